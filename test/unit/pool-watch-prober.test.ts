import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { formatSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ConflictProber } from '../../src/agents/conflict-prober.js';
import { poolWithRange } from '../fakes/pools.js';
import { MemoryPoolWatch } from '../fakes/pool-watch.js';
import { v4 } from '../harness/ipam-requests.js';

/** The conflict prober hears of other hosts' pool changes through a watch, and reads only its own host's claims. */
const POOL = '10.1.0.0/22';

async function rig() {
  const { stores, admin } = await poolWithRange('10.1.0.1/22', '10.1.0.30');
  const driver = new IpamDriverService(stores, 'h1', silentLogger());
  await driver.requestPool(v4(POOL));
  const calls = { pools: 0, upcoming: 0 };
  let prober: ConflictProber | undefined;
  const watch = new MemoryPoolWatch(stores, {
    changed: (s) => prober?.poolChanged(formatSubnet(s)),
    resync: () => prober?.resync(),
  });
  const conflicts = new ConflictService(stores);
  prober = new ConflictProber(
    {
      hostId: 'h1',
      pools: async () => {
        calls.pools++;
        return (await stores.pools.claimsOf('h1')).map((c) => c.poolId);
      },
      watch,
      bridgeFor: async () => 'br0',
      upcoming: (id, n) => {
        calls.upcoming++;
        return driver.upcoming(id, n);
      },
      probe: async (_ifname, address) => ({ address, answered: false }),
      record: (id, address, seen) => conflicts.record(parsePoolId(id), id, address, seen),
      logger: silentLogger(),
    },
    { candidates: 4, tickMs: 3_600_000, quietMs: 0, maxDeferMs: 0, watchMs: 3_600_000 },
  );
  return { stores, admin, prober, watch, calls };
}

test("a config change by another host re-plans the pool's probes at once; another host's network create does not", async () => {
  const r = await rig();
  await r.prober.round();
  await r.prober.settle();
  assert.deepEqual(r.watch.following(), [POOL], "the watch follows this host's pool");
  const before = r.calls.upcoming;

  // another host creates and removes its network on the pool: its own keys only, nothing this host watches
  const h2 = new IpamDriverService(r.stores, 'h2', silentLogger());
  const { poolId } = await h2.requestPool(v4(POOL));
  await h2.releasePool(poolId);
  await r.prober.settle();
  assert.equal(r.calls.upcoming, before, 'no re-plan');

  // the operator narrows the pool (the shared config): the watch tells, the candidates are planned again
  await r.admin.addHostRange({ start: '10.1.0.1/22', end: '10.1.0.9' });
  await r.prober.settle();
  assert.equal(r.calls.upcoming, before + 1, 'one re-plan, without a round');
  assert.equal(r.calls.pools, 1, "this host's claims were read once (the first round)");
  await r.prober.stop();
  assert.equal(r.watch.closed, true);
});

test('a compacted watch means a full round (its claims read again), not an error', async () => {
  const r = await rig();
  await r.prober.round();
  await r.prober.settle();
  r.watch.compact();
  await r.prober.settle();
  assert.equal(r.calls.pools, 2);
  await r.prober.stop();
});
