import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSubnet } from '../../src/net/address.js';
import { emptyPoolConfig, type PoolConfig } from '../../src/ipam/model/records.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import {
  allocatable,
  allowedFor,
  claimPool,
  dropRanges,
  poolData,
  releaseClaim,
} from '../../src/ipam/core/pool-rules.js';
import { declareAux, reservationAddress, reserve, unreserve } from '../../src/ipam/core/reservations.js';
import { kind } from '../harness/ipam-requests.js';

const now = '2026-01-01T00:00:00.000Z';
const subnet = parseSubnet('10.20.0.0/24');
const withRange = (): PoolConfig => ({
  ...emptyPoolConfig('10.20.0.0/24'),
  ranges: [{ start: '10.20.0.0', end: '10.20.0.63', origin: 'admin', createdAt: now }],
  hostRanges: [{ start: '10.20.0.10', end: '10.20.0.19', createdAt: now }],
  gateway: '10.20.0.1',
});

test('allocatable = ranges minus network, gateway, host ranges and reservations', () => {
  const c = reserve(withRange(), 'h1', 'aux', '10.20.0.5');
  assert.deepEqual(allocatable(c, subnet), [
    { start: 2n, end: 4n },
    { start: 6n, end: 9n },
    { start: 20n, end: 63n },
  ]);
  assert.deepEqual(allowedFor(c, parsePoolId('10.20.0.0/24|10.20.0.32/27')), [{ start: 32n, end: 63n }]);
});

test('a subnet without ranges is refused unless Docker brings an ip-range', () => {
  const ref = parsePoolId('10.20.0.0/24');
  assert.throws(
    () => claimPool(emptyPoolConfig('10.20.0.0/24'), ref, 'h1', '10.20.0.0/24', now),
    /flatnet ip-range add/,
  );
  const sub = parsePoolId('10.20.0.0/24|10.20.0.128/25');
  const c = claimPool(emptyPoolConfig('10.20.0.0/24'), sub, 'h1', '10.20.0.0/24|10.20.0.128/25', now);
  assert.equal(c.ranges[0]?.origin, 'docker');
  assert.deepEqual(allocatable(c, subnet), [{ start: 128n, end: 254n }]);
  // another host shares; the same host again is one more network on the pool; another sub-pool is an overlap
  const c2 = claimPool(c, sub, 'h2', '10.20.0.0/24|10.20.0.128/25', now);
  assert.equal(c2.ranges.length, 1);
  assert.equal(claimPool(c2, sub, 'h1', '10.20.0.0/24|10.20.0.128/25', now).claims.length, 3);
  assert.throws(
    () => claimPool(c2, parsePoolId('10.20.0.0/24|10.20.0.0/25'), 'h1', '10.20.0.0/24|10.20.0.0/25', now),
    kind('conflict'),
  );
});

test('sub-pools that meet a range only narrow it; apart from all they become a range', () => {
  const inside = claimPool(withRange(), parsePoolId('10.20.0.0/24|10.20.0.32/27'), 'h1', 'x', now);
  assert.equal(inside.ranges.length, 1);
  const partRef = parsePoolId('10.20.0.0/24|10.20.0.0/25');
  const part = claimPool(withRange(), partRef, 'h1', 'x', now);
  assert.equal(part.ranges.length, 1);
  const admin = allocatable(part, subnet);
  const narrowed = allowedFor(part, partRef);
  assert.ok(narrowed.length > 0);
  for (const iv of narrowed) {
    assert.ok(iv.end <= 127n, 'only the sub-pool');
    assert.ok(
      admin.some((a) => a.start <= iv.start && iv.end <= a.end),
      'only the operator range',
    );
  }
});

test('releasing the last claim offers the docker range for dropping and drops reservations', () => {
  const id = '10.20.0.0/24|10.20.0.128/25';
  let c = claimPool(emptyPoolConfig('10.20.0.0/24'), parsePoolId(id), 'h1', id, now);
  c = claimPool(c, parsePoolId(id), 'h2', id, now);
  c = reserve(reserve(c, 'h1', 'gateway', '10.20.0.1'), 'h2', 'gateway', '10.20.0.1');
  const r1 = releaseClaim(c, 'h1', id);
  assert.deepEqual(r1.droppable, []);
  assert.deepEqual(Object.keys(r1.config.reservations[0]?.holders ?? {}), ['h2']);
  const r2 = releaseClaim(r1.config, 'h2', id);
  assert.deepEqual(r2.droppable, [{ start: 128n, end: 255n }]);
  assert.equal(dropRanges(r2.config, subnet, r2.droppable).ranges.length, 0);
  assert.equal(releaseClaim(r2.config, 'h9', 'nope').config.claims.length, 0);
});

test('reservations are ref-counted per host; gateway defaults', () => {
  assert.equal(reservationAddress(withRange(), subnet, 'gateway', ''), '10.20.0.1');
  assert.equal(reservationAddress(emptyPoolConfig('10.20.0.0/24'), subnet, 'gateway', ''), '10.20.0.1');
  assert.throws(() => reservationAddress(withRange(), subnet, 'aux', '10.30.0.1'), kind('invalid'));
  let c = reserve(reserve(withRange(), 'h1', 'gateway', '10.20.0.7'), 'h1', 'gateway', '10.20.0.7');
  c = unreserve(c, 'h1', '10.20.0.7') as PoolConfig;
  assert.equal(c.reservations.length, 1);
  assert.equal(unreserve(c, 'h2', '10.20.0.7'), undefined);
  assert.equal((unreserve(c, 'h1', '10.20.0.7') as PoolConfig).reservations.length, 0);
  assert.deepEqual(poolData(withRange(), subnet), { 'com.docker.network.gateway': '10.20.0.1/24' });
});

test('an aux reservation is shared across hosts but never twice on one host (a --ip inside the aux window)', () => {
  const c = reserve(withRange(), 'h1', 'aux', '10.20.0.200');
  const shared = reserve(c, 'h2', 'aux', '10.20.0.200');
  assert.deepEqual(Object.keys(shared.reservations.find((r) => r.address === '10.20.0.200')?.holders ?? {}).sort(), [
    'h1',
    'h2',
  ]);
  assert.throws(() => reserve(shared, 'h1', 'aux', '10.20.0.200'), kind('conflict'));
  // the gateway stays idempotent per host: Docker may ask again after a failed create it cleaned up
  const gw = reserve(reserve(c, 'h1', 'gateway', '10.20.0.1'), 'h1', 'gateway', '10.20.0.1');
  assert.equal(gw.reservations.find((r) => r.address === '10.20.0.1')?.holders.h1, 2);
});

test('an undeclared aux address is held by its first host alone until it is declared; a declared one is shared', () => {
  const c = reserve(withRange(), 'h1', 'aux', '10.20.0.200', false);
  assert.equal(c.reservations[0]?.tentative, true);
  assert.throws(
    () => reserve(c, 'h2', 'aux', '10.20.0.200', false),
    (e: unknown) => kind('conflict')(e) && /not declared as an aux address/.test((e as Error).message),
  );
  // a declaration on the RequestPool joins at once and makes it shared
  const joined = reserve(c, 'h2', 'aux', '10.20.0.200', true);
  assert.deepEqual(
    [joined.reservations[0]?.tentative, Object.keys(joined.reservations[0]?.holders ?? {}).sort()],
    [undefined, ['h1', 'h2']],
  );
  // or the flatnet driver's CreateNetwork on the holder's host declares it
  assert.equal(declareAux(c, 'h2', ['10.20.0.200']), undefined, 'only a holder declares');
  const declared = declareAux(c, 'h1', ['10.20.0.200']);
  assert.ok(declared);
  assert.equal(declared.reservations[0]?.tentative, undefined);
  assert.deepEqual(
    Object.keys(reserve(declared, 'h2', 'aux', '10.20.0.200', false).reservations[0]?.holders ?? {}).sort(),
    ['h1', 'h2'],
  );
  // released by its host, it is gone as before
  assert.deepEqual(unreserve(c, 'h1', '10.20.0.200')?.reservations, []);
});
