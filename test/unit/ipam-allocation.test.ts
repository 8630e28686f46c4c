import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockOf, getBit } from '../../src/ipam/core/bitmap.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { offsetIn } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { MemoryStores } from '../fakes/memory-stores.js';
import { poolWithRange } from '../fakes/pools.js';
import { kind } from '../harness/ipam-requests.js';

const ref = parsePoolId('10.1.0.0/22');
const POOL = '10.1.0.0/22';
const allocator = (stores: MemoryStores, host = 'h1') => new AllocationService(stores.blocks, stores.retry, host);
const blockOfAddress = (a: string) => blockOf(offsetIn(ref.subnet, a));

test('a batch is served from one block in one commit; the next one from the cached block, with no read', async () => {
  const { stores } = await poolWithRange();
  const a = allocator(stores);
  const first = await a.allocate(ref, POOL, [{}, {}, {}]);
  assert.equal(first.length, 3);
  assert.equal(new Set(first).size, 3);
  assert.equal(new Set(first.map(blockOfAddress)).size, 1, 'one block');
  const before = { ...stores.stats };
  const second = await a.allocate(ref, POOL, [{ macAddress: '02:42:00:00:00:01' }]);
  assert.equal(stores.stats.commits - before.commits, 1, 'one commit');
  assert.equal(stores.stats.reads - before.reads, 0, 'no read: the block came from the cache');
  assert.equal(blockOfAddress(second[0] as string), blockOfAddress(first[0] as string));
  assert.deepEqual(stores.assignment(ref.subnet, second[0] as string), {
    assignment: {
      hostId: 'h1',
      since: (stores.assignment(ref.subnet, second[0] as string) as { assignment: { since: string } }).assignment.since,
      poolId: POOL,
      macAddress: '02:42:00:00:00:01',
    },
  });
});

test('filling a block moves on to the next; the whole pool drains into distinct addresses, then exhaustion', async () => {
  const { stores } = await poolWithRange();
  const a = allocator(stores);
  const got: string[] = [];
  const blocksSeen: bigint[] = [];
  for (;;) {
    let batch: string[];
    try {
      batch = await a.allocate(
        ref,
        POOL,
        Array.from({ length: 100 }, () => ({})),
      );
    } catch (err) {
      assert.ok(kind('exhausted')(err));
      assert.match((err as Error).message, /Pool 10\.1\.0\.0\/22 is exhausted/);
      break;
    }
    assert.equal(new Set(batch.map(blockOfAddress)).size, 1, 'a batch never spans blocks');
    const b = blockOfAddress(batch[0] as string);
    if (blocksSeen.at(-1) !== b) blocksSeen.push(b);
    got.push(...batch);
  }
  assert.equal(got.length, 1022, '10.1.0.1 - 10.1.3.254');
  assert.equal(new Set(got).size, 1022);
  assert.ok(!got.includes('10.1.0.0') && !got.includes('10.1.3.255'));
  assert.equal(new Set(blocksSeen).size, 4, 'each block filled once, in turn');
});

test('a conflict on commit is retried; a stale cached block is re-read at once', async () => {
  const { stores } = await poolWithRange();
  // a sub-pool of one block: both hosts allocate from it
  const small = parsePoolId('10.1.0.0/22|10.1.0.0/26');
  const a = allocator(stores);
  await a.allocate(small, POOL, [{}]);
  // another host writes the same block between this host's cached view and its commit
  const other = allocator(stores, 'h2');
  let theirs: string[] = [];
  stores.beforeNextCommit(async () => {
    theirs = await other.allocate(small, POOL, [{}, {}]);
  });
  const before = stores.stats.reads;
  const mine = await a.allocate(small, POOL, [{}]);
  assert.ok(stores.stats.reads > before, 'the stale cached block was read again');
  assert.ok(stores.stats.conflicts >= 1);
  assert.equal(new Set([...mine, ...theirs]).size, 3, 'nobody got an address twice');
  stores.injectConflicts(3);
  assert.equal((await a.allocate(ref, POOL, [{}])).length, 1, 'retried past three conflicts');
});

test('a host that loses a block to another writer moves to another open block; with none left it stays', async () => {
  const { stores } = await poolWithRange();
  const a = allocator(stores);
  const [first] = await a.allocate(ref, POOL, [{}]);
  const contended = blockOfAddress(first as string);
  // the cached view fails (re-read at once), then the fresh one: a lost race
  stores.injectConflicts(2);
  const [second] = await a.allocate(ref, POOL, [{}]);
  assert.notEqual(blockOfAddress(second as string), contended, 'the loser left the contended block');
  const [third] = await a.allocate(ref, POOL, [{}]);
  assert.equal(blockOfAddress(third as string), blockOfAddress(second as string), 'and stays in its new block');

  const small = parsePoolId('10.1.0.0/22|10.1.0.0/26');
  const [one] = await a.allocate(small, POOL, [{}]);
  stores.injectConflicts(2);
  const [two] = await a.allocate(small, POOL, [{}]);
  assert.equal(
    blockOfAddress(two as string),
    blockOfAddress(one as string),
    'a sub-pool of one block has nowhere else to go',
  );
});

test('endless conflicts end as a clear "unavailable" after the bounded retries', async () => {
  const { stores } = await poolWithRange();
  stores.injectConflicts(1000);
  await assert.rejects(
    allocator(stores).allocate(ref, POOL, [{}]),
    (e: unknown) => kind('unavailable')(e) && /Too many concurrent changes/.test((e as Error).message),
  );
});

test('an unknown pool is "not found", worded once', async () => {
  const { stores } = await poolWithRange();
  await assert.rejects(
    allocator(stores).allocate(parsePoolId('10.9.0.0/24'), '10.9.0.0/24', [{}]),
    (e: unknown) =>
      kind('not-found')(e) && (e as Error).message === 'Pool 10.9.0.0/24 does not exist (was its network removed?).',
  );
});

test('the driver group-commits concurrent requests: many callers, few commits, distinct addresses', async () => {
  const { stores } = await poolWithRange();
  const driver = new IpamDriverService(stores, 'h1', silentLogger());
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: POOL,
    subPool: '',
    options: {},
    v6: false,
  });
  const before = stores.stats.commits;
  const got = await Promise.all(
    Array.from({ length: 40 }, () => driver.requestAddress({ poolId, address: '', kind: 'container' })),
  );
  assert.equal(new Set(got.map((g) => g.address)).size, 40);
  assert.ok(got.every((g) => g.address.endsWith('/22')));
  assert.ok(stores.stats.commits - before < 40, `batched: ${stores.stats.commits - before} commits for 40 requests`);
  // releases of one block are batched too, and the same address twice in one batch is freed once
  const addr = (got[0] as { address: string }).address.split('/')[0] as string;
  await Promise.all([driver.releaseAddress(poolId, addr), driver.releaseAddress(poolId, addr)]);
  assert.equal(stores.assignment(ref.subnet, addr), undefined);
});

test('a record for an address its block calls free is taken as the truth: the bit is set and the allocation goes on', async () => {
  const { stores } = await poolWithRange();
  const small = parsePoolId('10.1.0.0/22|10.1.0.0/26');
  // 10.1.0.1 is the first address the allocator would pick; its record exists, its bit does not
  const held = { assignment: { hostId: 'h9', since: '2026-01-01T00:00:00.000Z', poolId: POOL } };
  stores.putAssignment(ref.subnet, '10.1.0.1', held);
  const got = await allocator(stores).allocate(small, POOL, [{}, {}]);
  assert.deepEqual(got, ['10.1.0.2', '10.1.0.3'], 'the recorded address was not handed out again');
  assert.deepEqual(stores.assignment(ref.subnet, '10.1.0.1'), held, 'the record stays as it was');
  const view = await stores.blocks.read(ref.subnet, 0n);
  assert.ok(view && getBit(view.bits, 1), 'the block now marks 10.1.0.1 used');
  const before = stores.stats.conflicts;
  assert.deepEqual(
    await allocator(stores, 'h2').allocate(small, POOL, [{}]),
    ['10.1.0.4'],
    'another host allocates without tripping over it',
  );
  assert.equal(stores.stats.conflicts, before, 'and without a failed commit');
});
