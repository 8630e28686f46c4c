import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { PoolSummary, ReleasedInfo, AssignmentInfo } from '../../src/ipam/contract.js';
import { type Lab, type LabHost, labLeftovers, startLab } from '../../src/lab/lab.js';
import { pluginCall as post } from '../harness/plugin-client.js';
import { missing } from '../harness/requirements.js';

/**
 * Cooldown and sticky names over the wire exactly as Docker 29 sends them (RequestAddress with
 * com.docker.network.endpoint.name in Options), against two real `flatnet server` processes on two hosts (network
 * namespaces of a lab: one server per host) and one real etcd: release, other requests, re-request from the other
 * host, a name that already holds an address, and exhaustion falling back to cooled, then parked addresses. The
 * servers run with the defaults (cooldown 300 s, sticky 24 h); the lab's dockerds are not asked anything here.
 */
const skip = missing('root', 'etcd', 'docker', 'iproute2');
const base = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
const subnet = `${base}.0/24`;
/** Eight container addresses: small enough to exhaust. */
const subPool = `${base}.8/29`;

let lab: Lab | undefined;

interface Host {
  name: string;
  socket: string;
  lab: LabHost;
}

function host(h: LabHost): Host {
  return { name: h.name, socket: join(h.pluginSocketDir, 'flatnet.sock'), lab: h };
}

/** The admin view as an operator reads it: the CLI inside a host, JSON out. */
async function cli<T>(h: Host, args: string[]): Promise<T> {
  return JSON.parse(await h.lab.flatnet([...args, '--json'])) as T;
}
const listReleased = (h: Host) => cli<ReleasedInfo[]>(h, ['ip', 'list', '--released', '--subnet', subnet]);
const listAssignments = (h: Host) => cli<AssignmentInfo[]>(h, ['ip', 'list', '--subnet', subnet]);
const poolSummaries = async (h: Host) =>
  (await cli<{ pools: PoolSummary[] }>(h, ['status'])).pools.filter((p) => p.subnet === subnet);

/** The body Docker 29 writes for a container's address (no MAC: flatnet does not ask for one). */
function docker29Request(poolId: string, name?: string): string {
  return JSON.stringify({
    PoolID: poolId,
    Address: '',
    Options: name === undefined ? null : { 'com.docker.network.endpoint.name': name },
  });
}

async function request(s: Host, poolId: string, name?: string): Promise<string> {
  const r = await post(s.socket, 'IpamDriver.RequestAddress', docker29Request(poolId, name));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return String(r.json.Address).split('/')[0] as string;
}

async function release(s: Host, poolId: string, address: string): Promise<void> {
  const r = await post(s.socket, 'IpamDriver.ReleaseAddress', JSON.stringify({ PoolID: poolId, Address: address }));
  assert.equal(r.status, 200, JSON.stringify(r.json));
}

before(async () => {
  if (!skip) lab = await startLab({ hosts: 2, etcdMembers: 1 });
});

after(async () => {
  if (!lab) return;
  await lab.stop();
  assert.deepEqual(await labLeftovers(lab.id), []);
});

test(
  'Docker 29 names: parked across release and other requests, back on another host, fresh for a twin, reused last at exhaustion',
  { skip },
  async () => {
    const [a, b] = (lab as Lab).hosts.map(host) as [Host, Host];
    const poolBody = JSON.stringify({
      AddressSpace: 'FlatLocal',
      Pool: subnet,
      SubPool: subPool,
      Options: null,
      V6: false,
    });
    const poolA = await post(a.socket, 'IpamDriver.RequestPool', poolBody);
    const poolB = await post(b.socket, 'IpamDriver.RequestPool', poolBody);
    assert.equal(poolA.status, 200, JSON.stringify(poolA.json));
    const poolId = String(poolA.json.PoolID);
    assert.equal(String(poolB.json.PoolID), poolId);

    const web = await request(a, poolId, 'web');
    await release(a, poolId, web);
    const released = await listReleased(a);
    assert.deepEqual(
      released.map((r) => [r.address, r.kind, r.endpointName, r.hostId]),
      [[web, 'parked', 'web', a.name]],
    );
    assert.deepEqual(await listAssignments(a), [], 'a parked address is not held');

    const db = await request(a, poolId, 'db');
    const unnamed = await request(a, poolId);
    assert.ok(db !== web && unnamed !== web, `web's address went to another container: ${db} ${unnamed}`);

    assert.equal(await request(b, poolId, 'web'), web, 'web gets its address back from the other host');
    const held = (await listAssignments(a)).find((x) => x.address === web);
    assert.deepEqual([held?.hostId, held?.endpointName], [b.name, 'web']);
    assert.ok(!(await listReleased(a)).some((r) => r.address === web));

    const twin = await request(a, poolId, 'web');
    assert.ok(![web, db, unnamed].includes(twin), `a second container named web got ${twin}`);

    // Fill the rest of the pool, then release one named (parked) and one unnamed (cooling).
    const rest: string[] = [];
    for (;;) {
      const r = await post(a.socket, 'IpamDriver.RequestAddress', docker29Request(poolId));
      if (r.status !== 200) {
        assert.match(String(r.json.Err), /exhaust|no free|full/i);
        break;
      }
      rest.push(String(r.json.Address).split('/')[0] as string);
      assert.ok(rest.length < 10, 'the pool never ran out');
    }
    const all = new Set([web, db, unnamed, twin, ...rest]);
    assert.equal(all.size, 4 + rest.length, 'distinct addresses');
    const status = await poolSummaries(a);
    assert.equal(status[0]?.used, all.size);
    assert.equal(status[0]?.free, '0');
    await release(a, poolId, db);
    await release(a, poolId, unnamed);
    assert.equal(
      (await poolSummaries(a))[0]?.used,
      all.size - 2,
      'cooling and parked addresses count as free in status',
    );
    assert.equal(await request(b, poolId, 'late'), unnamed, 'plain cooling before parked');
    assert.equal(
      await request(b, poolId, 'later'),
      db,
      'then the parked one: never exhausted while addresses are free',
    );
    const full = await post(b.socket, 'IpamDriver.RequestAddress', docker29Request(poolId, 'db'));
    assert.equal(full.status, 500, JSON.stringify(full.json));
    assert.deepEqual(await listReleased(a), []);
  },
);
