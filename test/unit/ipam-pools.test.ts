import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { AddressService } from '../../src/ipam/services/address-service.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { PoolService } from '../../src/ipam/services/pool-service.js';
import { parseSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryStores } from '../fakes/memory-stores.js';
import { poolWithRange } from '../fakes/pools.js';
import { kind, v4 } from '../harness/ipam-requests.js';

test('claims: a Docker --ip-range becomes a range, shared by hosts, counted on one host, refused on overlap', async () => {
  const stores = new MemoryStores();
  const [h1, h2] = [
    new PoolService(stores.pools, 'h1', silentLogger()),
    new PoolService(stores.pools, 'h2', silentLogger()),
  ];
  await assert.rejects(h1.requestPool(v4('10.5.0.0/24')), /flatnet ip-range add/);
  const p = await h1.requestPool(v4('10.5.0.0/24', '10.5.0.0/28'));
  assert.deepEqual(p, { poolId: '10.5.0.0/24|10.5.0.0/28', pool: '10.5.0.0/24', data: {} });
  assert.equal((await h2.requestPool(v4('10.5.0.0/24', '10.5.0.0/28'))).poolId, p.poolId);
  assert.equal(
    (await h1.requestPool(v4('10.5.0.0/24', '10.5.0.0/28'))).poolId,
    p.poolId,
    'a repeated RequestPool succeeds',
  );
  await assert.rejects(h1.requestPool(v4('10.5.0.0/24', '10.5.0.16/28')), kind('conflict'));
  await assert.rejects(
    h2.requestPool(v4('10.5.0.0/16', '10.5.0.0/28')),
    (e: unknown) => kind('conflict')(e) && /overlaps the existing pool 10\.5\.0\.0\/24/.test((e as Error).message),
  );
  await assert.rejects(h1.requestPool(v4('', '10.5.0.0/28')), kind('invalid'));
  await assert.rejects(h1.requestPool(v4('')), kind('exhausted'), 'no configured pool left');
  await assert.rejects(h1.requestPool({ ...v4('10.6.0.0/24', '10.6.0.0/28'), v6: true }), kind('invalid'));
  await assert.rejects(h1.releasePool('net-1'), kind('invalid'));
  await h1.releasePool('10.77.0.0/24');
});

test('two hosts creating overlapping pools at once: the second sees the first and is refused', async () => {
  const stores = new MemoryStores();
  const [h1, h2] = [
    new PoolService(stores.pools, 'h1', silentLogger()),
    new PoolService(stores.pools, 'h2', silentLogger()),
  ];
  stores.beforeNextCommit(async () => {
    await h2.requestPool(v4('10.7.0.0/16', '10.7.0.0/28'));
  });
  await assert.rejects(h1.requestPool(v4('10.7.0.0/24', '10.7.0.0/28')), kind('conflict'));
  assert.deepEqual(
    (await stores.pools.listSubnets()).map((s) => `${s.prefix}`),
    ['16'],
  );
});

test('release: the last claim drops the idle Docker range and the pool; an assigned one keeps its range', async () => {
  const stores = new MemoryStores();
  const h1 = new PoolService(stores.pools, 'h1', silentLogger());
  const id = '10.8.0.0/24|10.8.0.0/28';
  await h1.requestPool(v4('10.8.0.0/24', '10.8.0.0/28'));
  const addresses = new AddressService(stores, 'h1', silentLogger());
  await addresses.requestSpecific(parsePoolId(id), id, '10.8.0.5', {});
  await h1.releasePool(id);
  const kept = await stores.pools.readAll();
  assert.equal(kept[0]?.config.ranges.length, 1, 'an address is still assigned in the range');
  assert.equal(kept[0]?.config.claims.length, 0);
  await addresses.release(parsePoolId(id), id, '10.8.0.5');
  await h1.requestPool(v4('10.8.0.0/24', '10.8.0.0/28'));
  await h1.releasePool(id);
  assert.deepEqual(await stores.pools.readAll(), [], 'nothing left: the pool and its keys are gone');
});

test('a range drop racing an allocation in it is retried and keeps the range', async () => {
  const stores = new MemoryStores();
  const [h1, h2] = [
    new PoolService(stores.pools, 'h1', silentLogger()),
    new PoolService(stores.pools, 'h2', silentLogger()),
  ];
  const id = '10.9.0.0/24|10.9.0.0/28';
  await h1.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
  await h2.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
  await h2.releasePool(id);
  const h1Addresses = new AddressService(stores, 'h1', silentLogger());
  // the release commits; the tidy after it reads the blocks, then h1's container takes an address before its commit
  stores.beforeNextCommit(async () => undefined);
  stores.beforeNextCommit(async () => {
    await h1Addresses.requestSpecific(parsePoolId(id), id, '10.9.0.3', {});
  });
  await h1.releasePool(id);
  const [pool] = await stores.pools.readAll();
  assert.equal(pool?.config.ranges.length, 1, 'the range stays: an address in it was assigned meanwhile');
  assert.ok(stores.stats.conflicts >= 1);
});

test('admin: ranges, host ranges and listing over the same repositories', async () => {
  const { stores, admin } = await poolWithRange('192.168.7.100/24', '192.168.7.103');
  await assert.rejects(admin.addIpRange({ start: '192.168.7.103', end: '192.168.7.110' }), kind('conflict'));
  await admin.addHostRange({ start: '192.168.7.1/24', end: '192.168.7.99', gateway: '192.168.7.1' });
  const h1 = new PoolService(stores.pools, 'h1', silentLogger());
  const p = await h1.requestPool(v4(''));
  assert.deepEqual(p.data, { 'com.docker.network.gateway': '192.168.7.1/24' });
  await new AddressService(stores, 'h1', silentLogger()).requestSpecific(
    parsePoolId(p.poolId),
    p.poolId,
    '192.168.7.101',
    {},
  );
  stores.putAssignment(parsePoolId(p.poolId).subnet, '192.168.7.102', 'unreadable');
  assert.deepEqual(
    (await admin.listAssignments()).map((a) => [a.address, a.hostId]),
    [['192.168.7.101', 'h1']],
  );
  const [summary] = await admin.poolSummaries();
  assert.deepEqual([summary?.size, summary?.used, summary?.free], ['4', 2, '2']);
  await assert.rejects(admin.removeIpRange({ start: '192.168.7.100', end: '192.168.7.103' }), kind('conflict'));
  assert.equal((await admin.releaseAddress('192.168.7.101'))?.hostId, 'h1');
  await assert.rejects(admin.removeHostRange({ start: '10.0.0.1/24', end: '10.0.0.9' }), kind('not-found'));
});

test('idle checks compare only their range: ip-range remove, host-range add and ReleasePool finish under churn elsewhere in the pool', async () => {
  const { stores, admin } = await poolWithRange('10.1.0.1/22', '10.1.0.254');
  await admin.addIpRange({ start: '10.1.2.1/22', end: '10.1.3.254' });
  // another host allocates in 10.1.2.0/23 between every read and commit of the operations below
  const other = new AllocationService(stores.blocks, stores.retry, 'h2');
  const busy = parsePoolId('10.1.0.0/22|10.1.2.0/23');
  let churned = 0;
  let armed = true;
  const arm = (): void =>
    stores.beforeNextCommit(async () => {
      await other.allocate(busy, '10.1.0.0/22', [{}]);
      churned++;
      if (armed) arm();
    });
  arm();
  await admin.removeIpRange({ start: '10.1.0.1', end: '10.1.0.254' });
  await admin.addHostRange({ start: '10.1.0.1/22', end: '10.1.0.50', gateway: '10.1.0.1' });
  const h1 = new PoolService(stores.pools, 'h1', silentLogger());
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22', '10.1.1.0/24'));
  await h1.releasePool(poolId);
  armed = false;
  const [pool] = await stores.pools.readAll();
  assert.deepEqual(
    pool?.config.ranges.map((r) => [r.start, r.end]),
    [['10.1.2.1', '10.1.3.254']],
    'range A and the --ip-range are gone',
  );
  assert.equal(pool?.config.hostRanges.length, 1);
  assert.ok(churned >= 4, `allocations went on meanwhile (${churned})`);
});

test("a host's RequestPool and ReleasePool conflict with no other host's; the last release tidies the pool", async () => {
  const stores = new MemoryStores();
  const [h1, h2] = ['h1', 'h2'].map((h) => new PoolService(stores.pools, h, silentLogger()));
  const id = '10.9.0.0/24|10.9.0.0/28';
  await h1?.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
  // h2 creates its network between h1's read and h1's commit, then removes it between the next ones
  stores.beforeNextCommit(async () => void (await h2?.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'))));
  await h1?.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
  stores.beforeNextCommit(async () => void (await h2?.releasePool(id)));
  await h1?.releasePool(id);
  assert.equal(stores.stats.conflicts, 0);
  assert.deepEqual(
    (await stores.pools.read(parseSubnet('10.9.0.0/24')))?.config.claims.map((c) => c.hostId),
    ['h1'],
  );
  await h1?.releasePool(id);
  assert.deepEqual(await stores.pools.readAll(), [], 'the tidy after the last release dropped the pool');
});
