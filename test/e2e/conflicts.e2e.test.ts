import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { type Engine, flatNetworkCreate, IMAGE, type Lab, labLeftovers, startLab } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { labEngines } from './engines.js';
import { withLabLogs } from './lab-diagnostics.js';
import { containerAddress } from './etcd-records.js';

// Issue #10, item 4: a machine outside flatnet (the lab's router namespace) answers ARP for 10 addresses of a
// 20-address range; the server's background probes record them, and 10 containers all get the other 10.
const skip = missing('root', 'docker', 'etcd', 'iproute2', 'arping');
const NETWORK = 'lan';
const RANGE = Array.from({ length: 20 }, (_, i) => `10.99.140.${i + 1}`);
/** Every other address: the allocator hands out the lowest free first, so probing must stay ahead of it. */
const FOREIGN = RANGE.filter((_, i) => i % 2 === 0);
const CONTAINERS = Array.from({ length: 10 }, (_, i) => `k${i + 1}`);

const conflictList = z.array(
  z.object({ address: z.string(), mac: z.string().optional(), seenAt: z.string(), seenBy: z.string() }),
);

for (const { engine, skip: engineSkip } of labEngines())
  describe(`conflict detection on ${engine.name}`, () => suite(engine, engineSkip));

function suite(engine: Engine, engineSkip: string | false): void {
  let lab: Lab;

  before(async () => {
    if (skip || engineSkip) return;
    lab = await startLab({ hosts: 1, etcdMembers: 1, engine, name: `conflicts e2e ${engine.name}` });
  });

  after(async () => {
    if (!lab) return;
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
  });

  test(
    `${engine.name}: addresses a foreign machine answers for are recorded and skipped; 10 containers get the other 10`,
    { skip: skip || engineSkip },
    async () => {
      const host = lab.hosts[0]!;
      const conflicts = async () =>
        conflictList.parse(JSON.parse(await host.flatnet(['ip', 'list', '--conflicts', '--json'])));
      await withLabLogs(lab, async () => {
        // The foreign machine: the router namespace holds the addresses on its LAN bridge, so it answers ARP for them.
        const lanMac = z
          .array(z.object({ address: z.string() }))
          .parse(JSON.parse(await lab.lanExec('ip', ['-j', 'link', 'show', 'dev', 'lan0'])))[0]!.address;
        for (const a of FOREIGN) await lab.lanExec('ip', ['addr', 'add', `${a}/32`, 'dev', 'lan0']);
        await host.flatnet(['ip-range', 'add', '--ip-start', `${RANGE[0]}/16`, '--ip-end', RANGE[19]!]);
        const created = Date.now();
        await host.docker(flatNetworkCreate(NETWORK, { ipRange: false }));

        // The first candidates (the 24 lowest free addresses) are probed in the background once the network exists;
        // the conflicts below them are recorded on the way. Probing off: none ever appears, and the checks below fail.
        const first = await waitFor(
          'the first conflicts recorded',
          async () => {
            const c = await conflicts();
            return c.length >= 6 ? c : undefined;
          },
          30_000,
          250,
        ).catch(() => []);
        console.log(
          `# ${engine.name}: ${first.length} conflicts recorded ${((Date.now() - created) / 1000).toFixed(1)} s after docker network create`,
        );

        const runMs: number[] = [];
        for (const name of CONTAINERS) {
          const t0 = Date.now();
          await host.docker(['run', '-d', '--name', name, '--net', NETWORK, IMAGE, 'sleep', '600']);
          runMs.push(Date.now() - t0);
        }
        const got = await Promise.all(CONTAINERS.map((n) => containerAddress(host, n, NETWORK)));
        const sorted = [...runMs].sort((a, b) => a - b);
        console.log(
          `# ${engine.name}: docker run -d with probing on: median ${sorted[5]} ms, max ${sorted[9]} ms over 10`,
        );
        const wanted = RANGE.filter((a) => !FOREIGN.includes(a));
        assert.deepEqual(
          [...got].sort(),
          [...wanted].sort(),
          `the containers got exactly the addresses nobody answers for: ${got.join(', ')}`,
        );

        const listed = await waitFor(
          'all 10 conflicts listed',
          async () => {
            const c = await conflicts();
            return c.length === FOREIGN.length ? c : undefined;
          },
          30_000,
          250,
        ).catch(async () => conflicts());
        assert.deepEqual(
          listed.map((c) => c.address).sort(),
          [...FOREIGN].sort(),
          'flatnet ip list --conflicts lists the 10',
        );
        assert.ok(
          listed.every((c) => c.mac === lanMac && c.seenBy === host.name),
          `each with the foreign MAC ${lanMac} and the host that saw it`,
        );
        const table = await host.flatnet(['ip', 'list', '--conflicts']);
        assert.match(
          table,
          new RegExp(`${FOREIGN[0]!.replace(/\./g, '\\.')}\\s+10\\.99\\.0\\.0/16\\s+${lanMac}\\s+\\S+\\s+${host.name}`),
        );
        const status = await host.flatnet(['status']);
        assert.match(status, /POOL\s+GATEWAY\s+SIZE\s+USED\s+CONFLICTS\s+FREE/);
        assert.match(
          status,
          /10\.99\.0\.0\/16\s+\S+\s+20\s+10\s+10\s+0\s/,
          `status counts 10 used and 10 conflicts:\n${status}`,
        );

        // Cleared while the machine still answers: the address is free again, comes up as a candidate, and is
        // recorded again before any container can get it.
        const cleared = Date.now();
        await host.flatnet(['ip', 'clear-conflict', FOREIGN[0]!]);
        await waitFor(
          'the cleared address recorded again',
          async () => ((await conflicts()).some((c) => c.address === FOREIGN[0]) ? true : undefined),
          30_000,
          250,
        );
        console.log(
          `# ${engine.name}: a cleared conflict that still answers recorded again after ${((Date.now() - cleared) / 1000).toFixed(1)} s`,
        );

        await host.docker(['rm', '-f', ...CONTAINERS]);
        // dockerd may still be releasing the last endpoints when rm returns (a network with endpoints is refused).
        await waitFor(
          'the network without endpoints',
          async () =>
            (await host.docker(['network', 'inspect', '-f', '{{len .Containers}}', NETWORK])).trim() === '0'
              ? true
              : undefined,
          30_000,
          200,
        );
        await host.docker(['network', 'rm', NETWORK]);
      });
    },
  );
}
