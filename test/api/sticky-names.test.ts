import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdIpamAdmin } from '../../src/server/etcd-ipam.js';
import { spawnFlatnetServer, waitAnswering, type FlatnetServer } from '../harness/flatnet-server.js';
import { pluginCall as post } from '../harness/plugin-client.js';
import { missing } from '../harness/requirements.js';

/**
 * Cooldown and sticky names over the wire exactly as Docker 29 sends them (RequestAddress with
 * com.docker.network.endpoint.name in Options), against two real `flatnet server` processes (two host ids) on
 * one real etcd: release, other requests, re-request from the other host, a name that already holds an address,
 * and exhaustion falling back to cooled, then parked addresses.
 */
const skip = missing('etcd');
const suffix = Math.random().toString(36).slice(2, 8);
const prefix = `/flatnet-sticky-${suffix}`;
const base = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
const subnet = `${base}.0/24`;
/** Eight container addresses: small enough to exhaust. */
const subPool = `${base}.8/29`;

let etcd: EtcdCluster;
let client: Etcd3;
let dir: string;
const servers: FlatnetServer[] = [];

async function startHost(host: string): Promise<FlatnetServer> {
  const configFile = join(dir, 'empty.conf');
  const server = spawnFlatnetServer({
    socket: join(dir, host, 'flatnet.sock'),
    args: ['--config', configFile, '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', prefix, '--host-id', host,
      '--state-dir', join(dir, host, 'state'), '--log-level', 'warn', '--release-cooldown', '300', '--sticky-for', '24h',
      '--docker-socket', join(dir, 'no-docker.sock')],
  });
  servers.push(server);
  await waitAnswering(server);
  return server;
}

/** The body Docker 29 writes for a container's address (no MAC: flatnet does not ask for one). */
function docker29Request(poolId: string, name?: string): string {
  return JSON.stringify({ PoolID: poolId, Address: '', Options: name === undefined ? null : { 'com.docker.network.endpoint.name': name } });
}

async function request(s: FlatnetServer, poolId: string, name?: string): Promise<string> {
  const r = await post(s.socket, 'IpamDriver.RequestAddress', docker29Request(poolId, name));
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return String(r.json.Address).split('/')[0] as string;
}

async function release(s: FlatnetServer, poolId: string, address: string): Promise<void> {
  const r = await post(s.socket, 'IpamDriver.ReleaseAddress', JSON.stringify({ PoolID: poolId, Address: address }));
  assert.equal(r.status, 200, JSON.stringify(r.json));
}

before(async () => {
  if (skip) return;
  etcd = await startEtcdCluster({ members: 1 });
  client = new Etcd3({ hosts: etcd.endpoints });
  dir = await mkdtemp(join(tmpdir(), 'flatnet-sticky-'));
  await writeFile(join(dir, 'empty.conf'), '');
});

after(async () => {
  for (const s of servers) await s.stop('SIGKILL');
  client?.close();
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('Docker 29 names: parked across release and other requests, back on another host, fresh for a twin, reused last at exhaustion', { skip }, async () => {
  const a = await startHost(`sticky-a-${suffix}`);
  const b = await startHost(`sticky-b-${suffix}`);
  const admin = new EtcdIpamAdmin({ etcd: client, prefix, logger: silentLogger() });
  const poolBody = JSON.stringify({ AddressSpace: 'FlatLocal', Pool: subnet, SubPool: subPool, Options: null, V6: false });
  const poolA = await post(a.socket, 'IpamDriver.RequestPool', poolBody);
  const poolB = await post(b.socket, 'IpamDriver.RequestPool', poolBody);
  assert.equal(poolA.status, 200, JSON.stringify(poolA.json));
  const poolId = String(poolA.json.PoolID);
  assert.equal(String(poolB.json.PoolID), poolId);

  const web = await request(a, poolId, 'web');
  await release(a, poolId, web);
  const released = await admin.listReleased();
  assert.deepEqual(released.map((r) => [r.address, r.kind, r.endpointName, r.hostId]), [[web, 'parked', 'web', `sticky-a-${suffix}`]]);
  assert.deepEqual(await admin.listAssignments(), [], 'a parked address is not held');

  const db = await request(a, poolId, 'db');
  const unnamed = await request(a, poolId);
  assert.ok(db !== web && unnamed !== web, `web's address went to another container: ${db} ${unnamed}`);

  assert.equal(await request(b, poolId, 'web'), web, 'web gets its address back from the other host');
  const held = (await admin.listAssignments()).find((x) => x.address === web);
  assert.deepEqual([held?.hostId, held?.endpointName], [`sticky-b-${suffix}`, 'web']);
  assert.ok(!(await admin.listReleased()).some((r) => r.address === web));

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
  const status = await admin.poolSummaries();
  assert.equal(status[0]?.used, all.size);
  assert.equal(status[0]?.free, '0');
  await release(a, poolId, db);
  await release(a, poolId, unnamed);
  assert.equal((await admin.poolSummaries())[0]?.used, all.size - 2, 'cooling and parked addresses count as free in status');
  assert.equal(await request(b, poolId, 'late'), unnamed, 'plain cooling before parked');
  assert.equal(await request(b, poolId, 'later'), db, 'then the parked one: never exhausted while addresses are free');
  const full = await post(b.socket, 'IpamDriver.RequestAddress', docker29Request(poolId, 'db'));
  assert.equal(full.status, 500, JSON.stringify(full.json));
  assert.deepEqual(await admin.listReleased(), []);
});
