import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import type { CoolingOptions } from '../../src/ipam/services/allocation-service.js';
import { ClusterCensus, countHolders } from '../../src/ipam/services/cluster-census.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { clusterMetricsHandler } from '../../src/observability/cluster-metrics.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { sampleValue } from './exposition.js';
import { v4 } from '../harness/ipam-requests.js';

/** The cluster gauges over a real etcd, with real allocations, releases that cool or park, conflicts and leases. */
const skip = missing('etcd');

const lab = etcdFixture(skip);

const POOL = '10.77.0.0/24';
const cooling: CoolingOptions = {
  policy: { cooldownSec: 600, stickySec: 3600 },
  now: () => Math.floor(Date.now() / 1000),
};

test(
  'pool and host gauges match what the hosts did: held, cooling, parked, conflicts, free, hosts down holding',
  { skip },
  async () => {
    const prefix = `/m${Math.random().toString(36).slice(2, 8)}`;
    const stores = new EtcdStores(lab.etcd, prefix, silentLogger(), { pageSize: 3 });
    const admin = new IpamAdminService(stores.ipam, silentLogger(), cooling);
    await admin.addIpRange({ start: '10.77.0.10/24', end: '10.77.0.29' });
    const host = (id: string) =>
      new IpamDriverService(new EtcdStores(lab.etcd, prefix, silentLogger()).ipam, id, silentLogger(), { cooling });
    const h1 = host('h1');
    const h2 = host('h2');
    const { poolId } = await h1.requestPool(v4(POOL));
    await h2.requestPool(v4(POOL));
    const take = async (h: IpamDriverService, endpointName?: string) =>
      (
        await h.requestAddress({ poolId, address: '', kind: 'container', ...(endpointName ? { endpointName } : {}) })
      ).address.split('/')[0] as string;

    const h1Held = [await take(h1), await take(h1), await take(h1), await take(h1)];
    const named = await take(h1, 'web');
    const h2Held = [await take(h2), await take(h2), await take(h2)];
    await h1.releaseAddress(poolId, h1Held.pop() as string); // cools
    await h1.releaseAddress(poolId, named); // parked for "web"
    const [foreign] = await h1.upcoming(poolId, 1);
    assert.ok(foreign);
    const seen = { mac: '02:11:22:33:44:55', seenAt: new Date().toISOString(), seenBy: 'h1' };
    assert.equal(await new ConflictService(stores.ipam).record(parsePoolId(poolId), poolId, foreign, seen), 'recorded');

    // h1 runs (live lease); h2 ran and stopped (known, lease gone) while it still holds its three addresses.
    const h1Reg = stores.hosts.start({ hostId: 'h1', logger: silentLogger() });
    const h2Reg = stores.hosts.start({ hostId: 'h2', logger: silentLogger() });
    await Promise.all([h1Reg.ready, h2Reg.ready]);
    await h2Reg.stop();

    try {
      const scrape = clusterMetricsHandler(new ClusterCensus(stores.ipam, stores.hosts, cooling), {
        cacheMs: 0,
        scanMs: 0,
      });
      const first = await scrape();
      assert.match(first.contentType, /^text\/plain/);
      const pool = { pool: POOL };
      const v = (name: string, labels: Record<string, string> = {}) => sampleValue(first.body, name, labels);
      assert.equal(v('flatnet_pool_size_addresses', pool), 20);
      assert.equal(v('flatnet_pool_held_addresses', pool), h1Held.length + h2Held.length);
      assert.equal(v('flatnet_pool_cooling_addresses', pool), 1);
      assert.equal(v('flatnet_pool_parked_addresses', pool), 1);
      assert.equal(v('flatnet_pool_conflict_addresses', pool), 1);
      assert.equal(v('flatnet_pool_free_addresses', pool), 20 - 6 - 1 - 1 - 1);
      assert.equal(v('flatnet_hosts', { state: 'up' }), 1);
      assert.equal(v('flatnet_hosts', { state: 'down' }), 1);
      assert.equal(v('flatnet_hosts_down_holding_addresses'), 1);
      assert.equal(v('flatnet_hosts_down_held_addresses'), 3);

      // A new allocation shows at the next scrape; the admin's own count agrees.
      await take(h1);
      const next = await scrape();
      assert.equal(sampleValue(next.body, 'flatnet_pool_held_addresses', pool), 7);
      const [summary] = await admin.poolSummaries();
      assert.equal(summary?.used, 7 + 1, 'the admin counts the conflict record as used: the gauges show it apart');

      // Who holds what: scanned while the host index may be incomplete, counted in it once complete; the same.
      const scanned = await countHolders(stores.ipam, stores.hosts);
      assert.equal(await stores.ipam.hostIndex.complete(), false, 'a new cluster has no layout marker yet');
      while ((await stores.ipam.hostIndex.fillStep()) === 'progress');
      assert.equal(await stores.ipam.hostIndex.complete(), true);
      const counted = await countHolders(stores.ipam, stores.hosts);
      assert.deepEqual(counted, scanned);
      assert.deepEqual([...counted.heldByHost].sort(), [
        ['h1', 4],
        ['h2', 3],
      ]);
      assert.deepEqual([...counted.conflicts], [[POOL, 1]]);
    } finally {
      await h1Reg.stop();
    }
  },
);
