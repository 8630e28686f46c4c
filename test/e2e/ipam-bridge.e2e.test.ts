import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Engine, IMAGE, type Lab, labLeftovers, startLab } from '../../src/lab/lab.js';
import { labEngines } from './engines.js';
import { waitFor } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { withLabLogs } from './lab-diagnostics.js';
import { containerAddress, etcdAssignments, etcdPoolClaims, flatnetIpList } from './etcd-records.js';

// Issue #2: flatnet as the IPAM driver of Docker's own bridge driver, on one host.
const skip = missing('root', 'docker', 'etcd', 'iproute2');
const SUBNET = '10.98.0.0/24';
const NETWORK = 'fbr';

for (const { engine, skip: engineSkip } of labEngines())
  describe(`flatnet IPAM under the bridge driver on ${engine.name}`, () => suite(engine, engineSkip));

function suite(engine: Engine, engineSkip: string | false): void {
  let lab: Lab;

  before(async () => {
    if (skip || engineSkip) return;
    lab = await startLab({ hosts: 1, etcdMembers: 1, engine });
  });

  after(async () => {
    if (!lab) return;
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
  });

  test(
    `${engine.name}: containers on a bridge network with --ipam-driver flatnet get the addresses etcd records, and give them back`,
    { skip: skip || engineSkip },
    async () => {
      const host = lab.hosts[0]!;
      await withLabLogs(lab, async () => {
        await host.flatnet(['ip-range', 'add', '--ip-start', '10.98.0.10/24', '--ip-end', '10.98.0.99/24']);
        await host.docker([
          'network',
          'create',
          '-d',
          'bridge',
          '--ipam-driver',
          'flatnet',
          '--subnet',
          SUBNET,
          '--gateway',
          '10.98.0.1',
          '-o',
          `com.docker.network.bridge.name=fbr${lab.id.slice(0, 4)}`,
          NETWORK,
        ]);
        const names = ['c1', 'c2', 'c3', 'c4'];
        for (const name of names) {
          await host.docker(['run', '-d', '--name', name, '--net', NETWORK, IMAGE, 'sleep', '600']);
        }
        const addresses = new Map<string, string>();
        for (const name of names) addresses.set(name, await containerAddress(host, name, NETWORK));
        const assigned = [...addresses.values()];
        assert.equal(new Set(assigned).size, names.length, `addresses must be distinct: ${assigned.join(', ')}`);
        for (const a of assigned) {
          const last = Number(a.split('.')[3]);
          assert.ok(a.startsWith('10.98.0.') && last >= 10 && last <= 99, `${a} must come from the added range`);
        }

        const inEtcd = await etcdAssignments(lab);
        for (const a of assigned) assert.equal(inEtcd.get(a), 'h1', `etcd must record ${a} as held by h1`);
        const containerRecords = [...inEtcd.keys()].filter((a) => a !== '10.98.0.1').sort();
        assert.deepEqual(containerRecords, [...assigned].sort(), "etcd holds exactly the containers' addresses");
        const listed = (await flatnetIpList(host))
          .filter((a) => a.address !== '10.98.0.1')
          .map((a) => a.address)
          .sort();
        assert.deepEqual(listed, [...assigned].sort(), 'flatnet ip list --json shows the same addresses');

        // The containers really use them: one pings another through the bridge.
        const pong = await host.docker(['exec', 'c1', 'ping', '-c', '1', '-W', '2', addresses.get('c2')!]);
        assert.match(pong, /1 packets received/);

        await host.docker(['rm', '-f', 'c1', 'c2']);
        // ReleaseAddress answers before its etcd txn lands (milliseconds later).
        const afterRm = await waitFor(
          'the released addresses gone from etcd',
          async () => {
            const r = await etcdAssignments(lab);
            return !r.has(addresses.get('c1')!) && !r.has(addresses.get('c2')!) ? r : undefined;
          },
          5000,
          50,
        ).catch(() => etcdAssignments(lab));
        assert.ok(
          !afterRm.has(addresses.get('c1')!) && !afterRm.has(addresses.get('c2')!),
          "removed containers' addresses are released",
        );
        assert.ok(afterRm.has(addresses.get('c3')!), 'the others stay assigned');

        await host.docker(['rm', '-f', 'c3', 'c4']);
        await host.docker(['network', 'rm', NETWORK]);
        const finalRecords = await etcdAssignments(lab);
        assert.deepEqual([...finalRecords.keys()], [], 'no address stays assigned after the network is removed');
        const claims = await etcdPoolClaims(lab, SUBNET);
        assert.ok(
          claims === undefined || !claims.includes('h1'),
          `the pool claim of h1 is gone (claims: ${JSON.stringify(claims)})`,
        );
        assert.deepEqual(await flatnetIpList(host), []);
      });
    },
  );
}
