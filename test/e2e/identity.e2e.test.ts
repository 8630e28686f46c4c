import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { type Engine, IMAGE, type Lab, labLeftovers, type LabHost, startLab } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { containerAddress } from './etcd-records.js';
import { labEngines } from './engines.js';
import { flatNetworkCreate } from '../../src/lab/lab.js';
import { withLabLogs } from './lab-diagnostics.js';

// Issue 10's checks on real engines: a removed container's address goes to none of the next containers on its host
// (the cooldown), and `flatnet ip list` names the holders of two hosts (owner records filled in after Join).
const skip = missing('root', 'docker', 'etcd', 'iproute2');
const NETWORK = 'lan';

const owner = z
  .object({
    address: z.string(),
    hostId: z.string(),
    containerName: z.string().optional(),
    containerId: z.string().optional(),
    endpointId: z.string().optional(),
    networkId: z.string().optional(),
  })
  .passthrough();
const released = z
  .object({ address: z.string(), hostId: z.string(), containerName: z.string().optional(), releasedAt: z.string() })
  .passthrough();

for (const { engine, skip: engineSkip } of labEngines())
  describe(`address identity on ${engine.name}`, () => suite(engine, engineSkip));

function suite(engine: Engine, engineSkip: string | false): void {
  let lab: Lab;
  const started: [LabHost, string][] = [];

  before(async () => {
    if (skip || engineSkip) return;
    lab = await startLab({ hosts: 2, etcdMembers: 1, engine, name: `identity e2e ${engine.name}` });
    await Promise.all(lab.hosts.map((h) => h.docker(flatNetworkCreate(NETWORK))));
  });

  after(async () => {
    if (!lab) return;
    for (const [h, name] of started) await h.docker(['rm', '-f', name]).catch(() => undefined);
    for (const h of lab.hosts) await h.docker(['network', 'rm', NETWORK]).catch(() => undefined);
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
  });

  async function runOn(host: LabHost, name: string): Promise<string> {
    await host.docker(['run', '-d', '--name', name, '--net', NETWORK, IMAGE, 'sleep', '600']);
    started.push([host, name]);
    return containerAddress(host, name, NETWORK);
  }

  test(
    `${engine.name}: ip list names the containers of two hosts; a removed container's address goes to none of the next 6 on its host`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const [h1, h2] = lab.hosts as [LabHost, LabHost];
        const web1 = await runOn(h1, 'web1');
        const db1 = await runOn(h2, 'db1');
        const t0 = Date.now();
        // Owner records are written after the reply to Docker (the name comes from the local Docker API after Join).
        const listed = await waitFor(
          'ip list naming web1 and db1',
          async () => {
            const rows = z.array(owner).parse(JSON.parse(await h2.flatnet(['ip', 'list', '--json'])));
            const a = rows.find((r) => r.address === web1);
            const b = rows.find((r) => r.address === db1);
            return a?.containerName === 'web1' && b?.containerName === 'db1' ? { a, b } : undefined;
          },
          30_000,
          250,
        );
        console.log(
          `# ${engine.name}: owner records complete (both hosts) ${((Date.now() - t0) / 1000).toFixed(1)} s after the second docker run`,
        );
        assert.equal(listed.a.hostId, h1.name);
        assert.equal(listed.b.hostId, h2.name);
        for (const r of [listed.a, listed.b]) {
          assert.match(r.containerId ?? '', /^[0-9a-f]{64}$/, 'container id recorded');
          assert.match(r.endpointId ?? '', /^[0-9a-f]{64}$/, 'endpoint id recorded');
          assert.match(r.networkId ?? '', /^[0-9a-f]{64}$/, 'network id recorded');
        }
        const table = await h1.flatnet(['ip', 'list']);
        assert.match(table, /NAME\s+CONTAINER\s+ENDPOINT\s+NETWORK/);
        for (const [address, name] of [
          [web1, 'web1'],
          [db1, 'db1'],
        ] as const) {
          assert.match(
            table,
            new RegExp(`^${address.replaceAll('.', '\\.')}\\s.*\\s${name}\\s`, 'm'),
            `the table names ${name} beside ${address}`,
          );
        }

        await h1.docker(['stop', '-t', '1', 'web1']);
        await h1.docker(['rm', 'web1']);
        // ReleaseAddress answers before its etcd txn lands (milliseconds later).
        const listReleased = async () =>
          z.array(released).parse(JSON.parse(await h1.flatnet(['ip', 'list', '--released', '--json'])));
        const cooling = await waitFor(
          'web1 listed as released',
          async () => {
            const r = await listReleased();
            return r.some((x) => x.address === web1) ? r : undefined;
          },
          5000,
          100,
        ).catch(listReleased);
        assert.ok(
          cooling.some((r) => r.address === web1 && r.containerName === 'web1' && r.hostId === h1.name),
          `${web1} listed as released by web1`,
        );
        const next: string[] = [];
        for (let i = 1; i <= 6; i++) next.push(await runOn(h1, `t${i}`));
        console.log(`# ${engine.name}: after web1 (${web1}) went, the next 6 on ${h1.name} got ${next.join(', ')}`);
        assert.ok(!next.includes(web1), `none of the next 6 containers got web1's address ${web1}`);
        assert.equal(new Set([...next, db1]).size, 7, 'all distinct');
      });
    },
  );
}
