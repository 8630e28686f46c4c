import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSubnet } from '../../src/net/address.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { forgetHost } from '../../src/ipam/services/host-forget.js';
import { Reconciler } from '../../src/ipam/services/reconcile.js';
import { silentLogger } from '../../src/observability/logger.js';
import { blockCommitCapacity } from '../../src/store/block-repository.js';
import { writeCost } from '../../src/store/etcd-io.js';
import { ETCD_TXN_LIMITS, fits, MARKER_COST, perTxn, splitByBudget } from '../../src/store/txn-budget.js';
import { poolWithRange } from '../fakes/pools.js';

const ops = (n: number) => ({ compares: 0, writes: n, bytes: 10 });

test('splitByBudget: groups in order, each within the limits beside the fixed part', () => {
  const items = Array.from({ length: 10 }, (_, i) => i);
  const groups = splitByBudget(items, () => ops(3), ops(4), { ops: 16, bytes: 1e9 });
  // (16 - 4) / 3 = 4 per group
  assert.deepEqual(groups, [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9],
  ]);
  assert.deepEqual(
    splitByBudget([], () => ops(1)),
    [],
  );
});

test('splitByBudget: compares and bytes are limits of their own; an item too big alone is an error', () => {
  const byCompares = splitByBudget([1, 2, 3], () => ({ compares: 5, writes: 0, bytes: 0 }), undefined, {
    ops: 10,
    bytes: 1e9,
  });
  assert.deepEqual(byCompares, [[1, 2], [3]]);
  const big = ETCD_TXN_LIMITS.bytes / 2;
  assert.equal(splitByBudget([1, 2, 3], () => ({ compares: 0, writes: 1, bytes: big - 10_000 })).length, 3);
  assert.throws(() => splitByBudget([1], () => ops(200)), /exceeds a whole txn/);
});

test('perTxn and fits agree with etcd defaults: 128 operations, 1.5 MiB', () => {
  assert.equal(perTxn(ops(1), ops(0)), 128);
  assert.equal(perTxn(ops(4), ops(8)), 30);
  assert.ok(fits(ops(128)));
  assert.ok(!fits(ops(129)));
  assert.throws(() => perTxn(ops(200), ops(0)), /not even one/);
});

test('a write is costed with its marker; a block commit at capacity stays within etcd limits', () => {
  const w = { expect: [{ key: 'a', modRevision: '1' }], puts: [{ key: 'b', value: 'x' }], deletes: ['c'] };
  const c = writeCost(w);
  assert.equal(c.compares, 1 + MARKER_COST.compares);
  assert.equal(c.writes, 2 + MARKER_COST.writes);
  for (const s of ['10.0.0.0/24', '10.0.0.0/8', 'fd00::/64']) {
    const cap = blockCommitCapacity(parseSubnet(s));
    const levels = s === '10.0.0.0/24' ? 0 : s === '10.0.0.0/8' ? 2 : 7;
    // worst case per freed address: 4 writes; fixed: block + summaries + cool + marker
    assert.ok(cap.removals * 4 + 2 + levels + 1 <= 128, `${s}: ${cap.removals} removals`);
    assert.ok(cap.removals >= 25, `${s}: a useful batch (${cap.removals})`);
    const b = cap.creations([true]);
    assert.ok(b.total + 2 + levels + 1 <= 128);
    assert.equal(b.costOf(0), 3);
  }
});

/** The fake refuses a txn over 128 operations like etcd: a host's 100 addresses of one block still go. */
test('fake etcd: 100 addresses of one block are reconciled and forgotten in full; index == records', async () => {
  const { stores } = await poolWithRange('10.1.0.1/24', '10.1.0.254');
  const ref = parsePoolId('10.1.0.0/24');
  const alloc = (hostId: string) => new AllocationService(stores.blocks, stores.retry, hostId);
  const take = async (hostId: string, n: number) => {
    const out: string[] = [];
    while (out.length < n)
      out.push(...(await alloc(hostId).allocate(ref, '10.1.0.0/24', Array(n - out.length).fill({}))));
    return out;
  };
  await take('dead', 100);
  await take('gone', 100);
  assert.equal(stores.hostIndexEntries().length, 200);
  const empty = {
    view: async () => ({
      held: new Set<string>(),
      complete: new Set<string>(),
      incomplete: new Map(),
      dockerComplete: true,
    }),
  };
  const r = await new Reconciler(stores, 'dead', empty, { graceMs: 0 }, silentLogger()).run();
  assert.equal(r.freed.length, 100);
  assert.equal(stores.hostIndexEntries().length, 100);
  const held = await forgetHost(stores, 'gone');
  assert.equal(held.addresses.length, 100);
  assert.deepEqual(stores.hostIndexEntries(), []);
  assert.equal(await stores.addresses.count(ref.subnet), 0);
});
