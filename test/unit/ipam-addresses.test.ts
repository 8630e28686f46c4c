import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyBitmap } from '../../src/ipam/model/block.js';
import { autoAssign, releaseInBlock, type BlockState } from '../../src/ipam/core/block-ops.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { AddressService } from '../../src/ipam/services/address-service.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import { poolWithRange } from '../fakes/pools.js';
import { kind } from '../harness/ipam-requests.js';

const POOL = '10.1.0.0/22';
const ref = parsePoolId(POOL);
const held = (hostId: string) => ({ assignment: { hostId, since: '2026-01-01T00:00:00.000Z', poolId: POOL } });

test('block operations are pure: they say what changes and what was skipped', () => {
  const state: BlockState = { block: 0n, hostBits: 10, bits: emptyBitmap(), nodes: [emptyBitmap()] };
  const all = [{ start: 1n, end: 3n }];
  const { offsets, edit } = autoAssign(state, 5, all, all);
  assert.deepEqual(offsets, [1n, 2n, 3n]);
  assert.ok(edit && edit.nodes[0] !== undefined, 'the block became full: its summary bit is set');
  assert.deepEqual(state.bits, emptyBitmap(), 'the input is untouched');
  const e = edit as { bits: Uint8Array; nodes: (Uint8Array | undefined)[] };
  const full: BlockState = {
    ...state,
    bits: e.bits,
    nodes: e.nodes.map((n, i) => n ?? (state.nodes[i] as Uint8Array)),
  };
  assert.deepEqual(autoAssign(full, 1, all, all), { offsets: [], edit: undefined });
  const plan = releaseInBlock(
    full,
    [
      { offset: 1n, address: '10.1.0.1', held: held('h1') },
      { offset: 1n, address: '10.1.0.1', held: held('h1') },
      { offset: 2n, address: '10.1.0.2', held: held('h2') },
      { offset: 3n, address: '10.1.0.3', held: 'unreadable' },
      { offset: 4n, address: '10.1.0.4', held: undefined },
    ],
    { hostId: 'h1', force: false },
    all,
  );
  assert.deepEqual(plan.outcomes, ['container', 'none', 'none', 'none', 'not-assigned']);
  assert.deepEqual(plan.freed, ['10.1.0.1']);
  assert.deepEqual(plan.foreign, [
    { address: '10.1.0.2', owner: 'h2' },
    { address: '10.1.0.3', owner: 'unknown (unreadable record)' },
  ]);
  assert.ok(plan.edit && plan.edit.nodes[0] !== undefined, 'no longer full: the summary bit clears');
  const forced = releaseInBlock(
    full,
    [{ offset: 3n, address: '10.1.0.3', held: 'unreadable' }],
    { hostId: 'admin', force: true },
    all,
  );
  assert.deepEqual(forced.outcomes, ['container']);
});

test('gateway and aux reservations: default gateway, shared by hosts, never an assigned address', async () => {
  const { stores } = await poolWithRange();
  const [h1, h2] = [new AddressService(stores, 'h1', silentLogger()), new AddressService(stores, 'h2', silentLogger())];
  assert.equal(await h1.reserve(ref, POOL, 'gateway', ''), '10.1.0.1/22');
  assert.equal(await h2.reserve(ref, POOL, 'gateway', ''), '10.1.0.1/22');
  assert.equal(await h1.reserve(ref, POOL, 'aux', '10.1.0.9'), '10.1.0.9/22');
  await assert.rejects(
    h1.reserve(ref, POOL, 'aux', '10.1.0.9'),
    kind('conflict'),
    'twice on one host is a --ip in the aux window',
  );
  await h1.requestSpecific(ref, POOL, '10.1.0.20', {});
  await assert.rejects(h2.reserve(ref, POOL, 'aux', '10.1.0.20'), kind('conflict'));
  await assert.rejects(h1.reserve(parsePoolId('10.2.0.0/24'), '10.2.0.0/24', 'gateway', ''), kind('not-found'));
  // a container takes the address between the reservation's read and its commit: the retry sees it
  stores.beforeNextCommit(async () => {
    await h2.requestSpecific(ref, POOL, '10.1.0.30', {});
  });
  await assert.rejects(h1.reserve(ref, POOL, 'aux', '10.1.0.30'), kind('conflict'));
  assert.equal(await h1.releaseReservation(ref, '10.1.0.9'), 'reservation');
  assert.equal(await h1.releaseReservation(ref, '10.1.0.9'), 'none');
});

test('--ip: granted when free and allowed; refused when taken, reserved or outside the ranges', async () => {
  const { stores } = await poolWithRange('10.1.0.10/22', '10.1.0.50');
  const h1 = new AddressService(stores, 'h1', silentLogger());
  const h2 = new AddressService(stores, 'h2', silentLogger());
  assert.equal(await h1.requestSpecific(ref, POOL, '10.1.0.20', { endpointName: 'web' }), '10.1.0.20/22');
  assert.deepEqual(stores.assignment(ref.subnet, '10.1.0.20'), {
    assignment: {
      hostId: 'h1',
      poolId: POOL,
      endpointName: 'web',
      since: (stores.assignment(ref.subnet, '10.1.0.20') as ReturnType<typeof held>).assignment.since,
    },
  });
  await assert.rejects(
    h2.requestSpecific(ref, POOL, '10.1.0.20', {}),
    (e: unknown) => kind('conflict')(e) && /already in use/.test((e as Error).message),
  );
  await assert.rejects(
    h2.requestSpecific(ref, POOL, '10.1.0.60', {}),
    (e: unknown) => kind('invalid')(e) && /outside the pool's ranges/.test((e as Error).message),
  );
  await assert.rejects(h2.requestSpecific(ref, POOL, '10.9.0.1', {}), kind('invalid'));
  // the same address asked by two hosts at once: one wins, the other is told it is in use
  stores.beforeNextCommit(async () => {
    await h2.requestSpecific(ref, POOL, '10.1.0.21', {});
  });
  await assert.rejects(h1.requestSpecific(ref, POOL, '10.1.0.21', {}), kind('conflict'));
  assert.equal((stores.assignment(ref.subnet, '10.1.0.21') as ReturnType<typeof held>).assignment.hostId, 'h2');
});

test('release: own address freed, a foreign or unreadable one left alone unless forced, reservations after', async () => {
  const { stores } = await poolWithRange();
  const h1 = new AddressService(stores, 'h1', silentLogger());
  const h2 = new AddressService(stores, 'h2', silentLogger());
  const admin = new AddressService(stores, 'admin', silentLogger());
  const [mine] = await new AllocationService(stores.blocks, stores.retry, 'h1').allocate(ref, POOL, [{}]);
  await h2.requestSpecific(ref, POOL, '10.1.0.40', {});
  assert.equal(await h2.release(ref, POOL, mine as string), 'none', "h2 may not free h1's address");
  assert.ok(stores.assignment(ref.subnet, mine as string));
  assert.equal(await h1.release(ref, POOL, mine as string), 'container');
  assert.equal(stores.assignment(ref.subnet, mine as string), undefined);
  assert.equal(await h1.release(ref, POOL, mine as string), 'none', 'twice: nothing left');
  // an unreadable record has no provable owner: only a forced release frees it
  await h1.requestSpecific(ref, POOL, '10.1.0.41', {});
  stores.putAssignment(ref.subnet, '10.1.0.41', 'unreadable');
  assert.equal(await h1.release(ref, POOL, '10.1.0.41'), 'none');
  assert.equal(await admin.release(ref, POOL, '10.1.0.41', true), 'container');
  assert.equal(await admin.release(ref, POOL, '10.1.0.40', true), 'container');
  // not a container address: this host's reservation goes instead
  await h1.reserve(ref, POOL, 'gateway', '');
  assert.equal(await h1.release(ref, POOL, '10.1.0.1'), 'reservation');
  assert.equal(await h1.release(ref, POOL, '10.200.0.1'), 'none', 'outside the pool');
  // freed bits are reused
  assert.equal(await h2.requestSpecific(ref, POOL, mine as string, {}), `${mine}/22`);
});

test('a release racing another release of the same block is retried and frees both', async () => {
  const { stores } = await poolWithRange();
  const h1 = new AddressService(stores, 'h1', silentLogger());
  const got = await new AllocationService(stores.blocks, stores.retry, 'h1').allocate(ref, POOL, [{}, {}]);
  const [a, b] = got as [string, string];
  stores.beforeNextCommit(async () => {
    assert.equal(await h1.release(ref, POOL, b), 'container');
  });
  assert.equal(await h1.release(ref, POOL, a), 'container');
  assert.equal(stores.assignment(ref.subnet, a), undefined);
  assert.equal(stores.assignment(ref.subnet, b), undefined);
  assert.ok(stores.stats.conflicts >= 1);
});
