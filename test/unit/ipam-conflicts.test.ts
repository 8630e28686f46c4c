import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import {
  type CandidateState,
  conflictRecord,
  isConflict,
  isStale,
  planProbes,
  preProbed,
} from '../../src/ipam/core/conflicts.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { assignmentSchema, CONFLICT_HOLDER } from '../../src/ipam/model/records.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { fsck } from '../../src/ipam/services/fsck.js';
import { withOwner } from '../../src/ipam/core/owners.js';
import { forgetHost, hostFootprint, operatorRelease } from '../../src/ipam/services/host-forget.js';
import { Reconciler } from '../../src/ipam/services/reconcile.js';
import { silentLogger } from '../../src/observability/logger.js';
import { poolWithRange } from '../fakes/pools.js';

/** Conflict records and the probe plan over the in-memory ports (the etcd side: test/integration/ipam-conflicts). */
const POOL = '10.1.0.0/22';
const bare = (cidr: string): string => cidr.split('/')[0] as string;
const seen = (mac = '02:aa:bb:cc:dd:ee') => ({ mac, seenAt: '2026-12-01T10:00:00.000Z', seenBy: 'h2' });

async function driverOn(range: [string, string], host = 'h1') {
  const { stores, admin } = await poolWithRange(...range);
  const driver = new IpamDriverService(stores, host, silentLogger());
  const pool = await driver.requestPool({ addressSpace: 'FlatLocal', pool: POOL, subPool: '', options: {}, v6: false });
  return { stores, admin, driver, poolId: pool.poolId, conflicts: new ConflictService(stores) };
}

const next = async (driver: IpamDriverService, poolId: string): Promise<string> =>
  bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address);

test("a conflict record round-trips through the assignment schema and is told apart from a container's", () => {
  const rec = conflictRecord('10.1.0.0/22', seen());
  const back = assignmentSchema.parse(JSON.parse(JSON.stringify(rec)));
  assert.deepEqual(back, { hostId: CONFLICT_HOLDER, since: seen().seenAt, poolId: '10.1.0.0/22', conflict: seen() });
  assert.equal(isConflict({ assignment: back }), true);
  assert.equal(isConflict({ assignment: { hostId: 'h1', since: 't', poolId: 'p' } }), false);
  assert.equal(isConflict('unreadable'), false);
  assert.equal(isConflict(undefined), false);
  assert.equal(conflictRecord('p', { ...seen(), mac: '' }).conflict?.mac, undefined, 'no MAC seen: none stored');
  assert.doesNotMatch(CONFLICT_HOLDER, /^[A-Za-z0-9]/, 'no real host id can be the conflict holder');
});

test('the probe plan probes what is upcoming and not freshly probed, and forgets what is no longer upcoming', () => {
  const known = new Map<string, CandidateState>([
    ['10.0.0.1', { state: 'free', probedAt: 1000 }],
    ['10.0.0.2', { state: 'free', probedAt: 50_000 }],
    ['10.0.0.3', { state: 'probing' }],
    ['10.0.0.9', { state: 'free', probedAt: 50_000 }],
  ]);
  const plan = planProbes(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], known, 61_000, 60_000);
  assert.deepEqual(plan.probe, ['10.0.0.1', '10.0.0.4'], 'stale and new ones, in allocation order');
  assert.deepEqual([...plan.keep.keys()], ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'a handed-out candidate is forgotten');
  assert.equal(preProbed(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'], known, 61_000, 60_000), 1);
  assert.equal(isStale(0, 59_999, 60_000), false);
  assert.equal(isStale(0, 60_000, 60_000), true);
  assert.deepEqual(planProbes(['10.0.0.5', '10.0.0.5'], new Map(), 0, 60_000).probe, ['10.0.0.5']);
});

test('upcoming names exactly the addresses the allocator hands out next, and changes nothing', async () => {
  const { driver, poolId, stores } = await driverOn(['10.1.0.1/22', '10.1.3.254']);
  await next(driver, poolId);
  const commits = stores.stats.commits;
  const peek = await driver.upcoming(poolId, 4);
  assert.equal(peek.length, 4);
  assert.equal(stores.stats.commits, commits, 'a peek writes nothing');
  assert.deepEqual(await driver.upcoming(poolId, 4), peek, 'and moves no cursor');
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await next(driver, poolId));
  assert.deepEqual(got, peek);
});

test('upcoming continues into the next block when the current one runs out', async () => {
  const { driver, poolId } = await driverOn(['10.1.0.250/22', '10.1.1.5']);
  const first = await next(driver, poolId);
  const peek = await driver.upcoming(poolId, 6);
  assert.ok(peek.length === 6 && peek.every((a) => a !== first), `six free addresses: ${peek.join(',')}`);
  assert.ok(
    peek.some((a) => a.startsWith('10.1.1.')),
    "the block after the cursor's is looked at too",
  );
});

test("a recorded conflict is skipped by every host's allocator, listed apart, and cleared back to free at once", async () => {
  const { driver, poolId, admin, stores, conflicts } = await driverOn(['10.1.0.1/22', '10.1.0.6']);
  const ref = parsePoolId(poolId);
  const upcoming = await driver.upcoming(poolId, 6);
  const bad = [upcoming[0] as string, upcoming[2] as string];
  for (const a of bad) assert.equal(await conflicts.record(ref, poolId, a, seen()), 'recorded');
  assert.equal(await conflicts.record(ref, poolId, bad[0] as string, seen()), 'taken', 'recorded once');
  const other = new IpamDriverService(stores, 'h2', silentLogger());
  const got = [
    await next(driver, poolId),
    await next(other, poolId),
    await next(driver, poolId),
    await next(other, poolId),
  ];
  assert.deepEqual(
    got.filter((a) => bad.includes(a)),
    [],
    `no host hands a conflict out: ${got.join(',')}`,
  );
  await assert.rejects(
    next(driver, poolId),
    (e: unknown) => e instanceof FlatnetError && /exhausted|no free/i.test(e.message),
  );
  assert.deepEqual(
    (await admin.listAssignments()).map((a) => a.address).sort(),
    [...got].sort(),
    'ip list shows containers only',
  );
  const listed = await admin.listConflicts();
  assert.deepEqual(
    listed.map((c) => [c.address, c.mac, c.seenBy]),
    bad.map((a) => [a, '02:aa:bb:cc:dd:ee', 'h2']),
  );
  assert.deepEqual(await admin.listConflicts({ subnet: '10.9.0.0/24' }), []);

  const cleared = await admin.clearConflict(bad[0] as string);
  assert.equal(cleared.address, bad[0]);
  assert.equal(await next(driver, poolId), bad[0], 'cleared: free at once (no cooldown)');
  await assert.rejects(
    admin.clearConflict(bad[0] as string),
    /is not a recorded conflict \(it is held by a container\)/,
  );
  await assert.rejects(admin.clearConflict('10.1.0.200'), /is not a recorded conflict \(it is free\)/);
  await assert.rejects(admin.clearConflict('10.200.0.1'), /in no pool/);
  assert.deepEqual(
    (await admin.listConflicts()).map((c) => c.address),
    [bad[1]],
  );
});

test("reconcile, host forget, ip release, Docker's release, owner updates and fsck leave a conflict alone", async () => {
  const { driver, poolId, admin, stores, conflicts } = await driverOn(['10.1.0.1/22', '10.1.0.20']);
  const a = (await driver.upcoming(poolId, 1))[0] as string;
  assert.equal(await conflicts.record(parsePoolId(poolId), poolId, a, { ...seen(), seenBy: 'h1' }), 'recorded');
  const nothingHeld = {
    view: async () => ({
      held: new Set<string>(),
      complete: new Set([POOL]),
      incomplete: new Map(),
      dockerComplete: true,
    }),
  };
  for (const host of ['h1', 'h2']) {
    const r = await new Reconciler(stores, host, nothingHeld, { graceMs: 0 }, silentLogger()).run();
    assert.deepEqual(r.freed, [], `the reconcile of ${host} frees nothing`);
  }
  assert.deepEqual((await hostFootprint(stores, 'h1')).addresses, [], 'the host that saw it does not hold it');
  await forgetHost(stores, 'h1');
  await driver.releaseAddress(poolId, a);
  await assert.rejects(
    operatorRelease(stores, a),
    (e: unknown) => e instanceof FlatnetError && e.kind === 'conflict' && /clear-conflict/.test(e.message),
  );
  assert.equal(await admin.releaseAddress(a), undefined);
  await assert.rejects(
    driver.requestAddress({ poolId, address: a, kind: 'container' }),
    /in use by a machine outside flatnet \(MAC 02:aa:bb:cc:dd:ee\)/,
  );
  assert.deepEqual(await fsck(stores), [], 'bit and record agree');
  assert.deepEqual(
    (await admin.listConflicts()).map((c) => c.address),
    [a],
    'still recorded after all of that',
  );
  assert.equal(
    withOwner({ assignment: conflictRecord(poolId, seen()) }, 'h2', { endpointId: 'e1' }),
    undefined,
    'no owner is written into it',
  );
});

test('a conflict is not recorded over an address a container got meanwhile', async () => {
  const { driver, poolId, conflicts } = await driverOn(['10.1.0.1/22', '10.1.0.20']);
  const a = await next(driver, poolId);
  assert.equal(await conflicts.record(parsePoolId(poolId), poolId, a, seen()), 'taken');
  assert.equal(await conflicts.record(parsePoolId(poolId), poolId, '10.1.0.100', seen()), 'not-allowed');
});
