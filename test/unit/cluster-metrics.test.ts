import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterSource, HolderScan, PoolCounts } from '../../src/ipam/services/cluster-census.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { sampleValue } from '../observability/exposition.js';

/** A source that counts its reads and answers what the test sets. */
function countingSource(): ClusterSource & {
  reads: { pools: number; holders: number; hosts: number };
  set: { pools: PoolCounts[]; scan: HolderScan; hosts: { hostId: string; alive: boolean }[]; fail?: Error };
} {
  const reads = { pools: 0, holders: 0, hosts: 0 };
  const set = {
    pools: [{ pool: '10.0.0.0/24', size: 100, records: 12, cooling: 3, parked: 1 }],
    scan: {
      conflicts: new Map([['10.0.0.0/24', 2]]),
      heldByHost: new Map([
        ['a', 4],
        ['b', 6],
        ['gone', 0],
      ]),
    },
    hosts: [
      { hostId: 'a', alive: true },
      { hostId: 'b', alive: false },
      { hostId: 'c', alive: false },
    ],
  } as ReturnType<typeof countingSource>['set'];
  const fail = async (): Promise<void> => {
    if (set.fail) throw set.fail;
  };
  return {
    reads,
    set,
    pools: async () => (reads.pools++, await fail(), set.pools),
    holders: async () => (reads.holders++, await fail(), set.scan),
    hosts: async () => (reads.hosts++, await fail(), set.hosts),
  };
}

test('gauges: held = records - conflicts, free = size - every taken state, down hosts holding', async () => {
  const src = countingSource();
  const text = await new ClusterMetrics(src).metrics();
  const pool = { pool: '10.0.0.0/24' };
  assert.equal(sampleValue(text, 'flatnet_pool_held_addresses', pool), 10);
  assert.equal(sampleValue(text, 'flatnet_pool_conflict_addresses', pool), 2);
  assert.equal(sampleValue(text, 'flatnet_pool_free_addresses', pool), 100 - 10 - 2 - 3 - 1);
  assert.equal(sampleValue(text, 'flatnet_hosts', { state: 'up' }), 1);
  assert.equal(sampleValue(text, 'flatnet_hosts', { state: 'down' }), 2);
  assert.equal(sampleValue(text, 'flatnet_hosts_down_holding_addresses'), 1, 'b holds; c and gone hold nothing');
  assert.equal(sampleValue(text, 'flatnet_hosts_down_held_addresses'), 6);
});

test('one read serves scrapes within cacheMs; concurrent scrapes share it; the scan runs every scanMs only', async () => {
  let now = 1_000_000;
  const src = countingSource();
  const m = new ClusterMetrics(src, { cacheMs: 5000, scanMs: 60_000, now: () => now });
  await Promise.all([m.metrics(), m.metrics(), m.metrics()]);
  assert.deepEqual(src.reads, { pools: 1, holders: 1, hosts: 1 });
  now += 4999;
  await m.metrics();
  assert.deepEqual(src.reads, { pools: 1, holders: 1, hosts: 1 });
  now += 1;
  src.set.pools = [{ pool: '10.0.0.0/24', size: 100, records: 13, cooling: 0, parked: 0 }];
  const text = await m.metrics();
  assert.deepEqual(src.reads, { pools: 2, holders: 1, hosts: 2 });
  assert.equal(sampleValue(text, 'flatnet_pool_held_addresses', { pool: '10.0.0.0/24' }), 11, 'the scan is reused');
  assert.equal(sampleValue(text, 'flatnet_cluster_scan_age_seconds'), 5);
  now += 60_000;
  await m.metrics();
  assert.deepEqual(src.reads, { pools: 3, holders: 2, hosts: 3 });
});

test('a pool gone from etcd leaves the gauges; a failed read rejects and the next scrape reads again', async () => {
  let now = 0;
  const src = countingSource();
  const m = new ClusterMetrics(src, { cacheMs: 10, now: () => now });
  await m.metrics();
  src.set.pools = [];
  now += 10;
  assert.doesNotMatch(await m.metrics(), /pool="10\.0\.0\.0\/24"/);
  src.set.fail = new Error('etcd away');
  now += 10;
  await assert.rejects(m.metrics(), /etcd away/);
  src.set.fail = undefined;
  await m.metrics();
  assert.equal(src.reads.pools, 4);
});
