import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrAt, formatSubnet, offsetIn, parseSubnet, subnetsOverlap } from '../../src/net/address.js';
import { blockFull, freeOffsets, withBit } from '../../src/ipam/core/bitmap.js';
import { emptyBitmap } from '../../src/ipam/model/block.js';
import { count, intersect, nthMember, subtract, union } from '../../src/net/intervals.js';
import { formatPoolId, parsePoolId } from '../../src/ipam/core/pool-id.js';
import { parseRangeSpec } from '../../src/ipam/core/range-spec.js';
import { ancestors, childBit, childSpan, nodeFull, openChildren, treeDepth } from '../../src/ipam/core/summary-tree.js';
import { FlatnetError } from '../../src/errors.js';

const iv = (s: number, e: number) => ({ start: BigInt(s), end: BigInt(e) });

test('subnets canonicalise, v4 and v6, and offsets round-trip', () => {
  assert.equal(formatSubnet(parseSubnet('10.20.0.9/24')), '10.20.0.0/24');
  assert.equal(formatSubnet(parseSubnet('fd00:0:0:1::5/64')), 'fd00:0:0:1::/64');
  const s = parseSubnet('10.0.0.0/8');
  assert.equal(s.size, 1n << 24n);
  assert.equal(offsetIn(s, '10.1.0.3'), 65539n);
  assert.equal(cidrAt(s, 65539n), '10.1.0.3/8');
  const v6 = parseSubnet('fd00::/64');
  assert.equal(cidrAt(v6, (1n << 63n) + 1n), 'fd00::8000:0:0:1/64');
  assert.throws(
    () => offsetIn(s, '11.0.0.1'),
    (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid',
  );
  assert.throws(() => parseSubnet('10.0.0.0/33'), FlatnetError);
  assert.throws(() => parseSubnet('300.0.0.0/8'), FlatnetError);
  assert.ok(subnetsOverlap(parseSubnet('10.0.0.0/8'), parseSubnet('10.9.0.0/16')));
  assert.ok(!subnetsOverlap(parseSubnet('10.0.0.0/24'), parseSubnet('10.0.1.0/24')));
});

test('interval sets: union, subtract, intersect, count, nth', () => {
  assert.deepEqual(union([iv(1, 5)], [iv(6, 9), iv(20, 30)]), [iv(1, 9), iv(20, 30)]);
  assert.deepEqual(subtract([iv(0, 255)], [iv(0, 0), iv(255, 255), iv(10, 19)]), [iv(1, 9), iv(20, 254)]);
  assert.deepEqual(intersect([iv(0, 10), iv(20, 30)], [iv(5, 25)]), [iv(5, 10), iv(20, 25)]);
  assert.equal(count([iv(1, 9), iv(20, 254)]), 244n);
  assert.equal(nthMember([iv(1, 9), iv(20, 254)], 9n), 20n);
  assert.equal(nthMember([iv(1, 2)], 5n), 2n);
  assert.equal(nthMember([], 5n), undefined);
});

test('block bitmaps give the lowest free allowed offsets and know when full', () => {
  let b = emptyBitmap();
  assert.deepEqual(freeOffsets(b, 1n, [iv(256 + 3, 256 + 5)], 10), [259n, 260n, 261n]);
  b = withBit(b, 3, true);
  assert.deepEqual(freeOffsets(b, 1n, [iv(256 + 3, 256 + 5)], 1), [260n]);
  b = withBit(withBit(b, 4, true), 5, true);
  assert.ok(blockFull(b, 1n, [iv(256 + 3, 256 + 5)]));
  assert.ok(!blockFull(withBit(b, 5, false), 1n, [iv(256 + 3, 256 + 5)]));
});

test('summary tree: depth, ancestors and open children', () => {
  assert.equal(treeDepth(8), 1);
  assert.equal(treeDepth(16), 2);
  assert.equal(treeDepth(24), 3);
  assert.equal(treeDepth(64), 8);
  assert.deepEqual(ancestors(0x1234n, 24), [
    { level: 1, index: 0x12n },
    { level: 2, index: 0n },
  ]);
  assert.equal(childBit(0x1234n, 1), 0x34);
  assert.equal(childBit(0x1234n, 2), 0x12);
  assert.deepEqual(childSpan({ level: 1, index: 1n }, 2), iv(65536 + 512, 65536 + 767));
  const node = { level: 1, index: 0n };
  let bits = emptyBitmap();
  assert.deepEqual(openChildren(node, bits, [iv(300, 900)], 0n), [1, 2, 3]);
  assert.deepEqual(openChildren(node, bits, [iv(300, 900)], 600n), [2, 3]);
  bits = withBit(withBit(withBit(bits, 1, true), 2, true), 3, true);
  assert.ok(nodeFull(node, bits, [iv(300, 900)]));
});

test('PoolIDs are canonical and parsed strictly', () => {
  const s = parseSubnet('10.20.0.0/24');
  assert.equal(formatPoolId(s, parseSubnet('10.20.0.128/25')), '10.20.0.0/24|10.20.0.128/25');
  assert.equal(parsePoolId('10.20.0.0/24|10.20.0.128/25').subPool?.prefix, 25);
  for (const bad of [
    '',
    'p1',
    '10.20.0.1/24',
    '10.20.0.0/24|10.21.0.0/25',
    '10.20.0.0/24|',
    'a|b|c',
    '10.20.0.0/24|fd00::/64',
  ]) {
    assert.throws(
      () => parsePoolId(bad),
      (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid',
      bad,
    );
  }
});

test('range specs take an optional /prefix naming the subnet', () => {
  const r = parseRangeSpec('192.168.0.100/24', '192.168.0.200');
  assert.equal(r.subnet && formatSubnet(r.subnet), '192.168.0.0/24');
  assert.equal(r.end - r.start, 100n);
  assert.equal(parseRangeSpec('10.0.0.1', '10.0.0.9').subnet, undefined);
  assert.throws(() => parseRangeSpec('10.0.0.9/24', '10.0.0.1'), FlatnetError);
  assert.throws(() => parseRangeSpec('10.0.0.1/24', '10.0.1.1'), FlatnetError);
  assert.throws(() => parseRangeSpec('10.0.0.1/24', 'fd00::1'), FlatnetError);
  assert.throws(() => parseRangeSpec('10.0.0.1/24', '10.0.0.5/25'), FlatnetError);
});

test('one address parser for every edge: CIDR and plain-IP checks, bare addresses', async () => {
  const { bareAddress, isCidr, isPlainIp } = await import('../../src/net/address.js');
  for (const ok of ['10.0.0.0/8', '10.0.0.5/32', 'fd00::/64', '::/0']) assert.ok(isCidr(ok), ok);
  for (const bad of [
    '10.0.0.0/33',
    '10.66.0.0/99',
    'fd00::/129',
    '10.0.0.0',
    '10.0.0.0/',
    '/24',
    ' 10.0.0.0/8',
    '10.0.0.256/8',
    'fe80::1%eth0/64',
  ]) {
    assert.ok(!isCidr(bad), bad);
  }
  for (const ok of ['10.0.0.1', 'fd00::1', '::ffff:10.0.0.1']) assert.ok(isPlainIp(ok), ok);
  for (const bad of ['10.0.0.1/24', '10.0.0', '10.0.0.1 ', 'fe80::1%eth0', '']) assert.ok(!isPlainIp(bad), bad);
  assert.equal(bareAddress('10.0.0.5/24'), '10.0.0.5');
  assert.equal(bareAddress('fd00::5'), 'fd00::5');
  assert.equal(bareAddress(''), '');
  assert.throws(() => bareAddress('10.0.0.5/24', 6), FlatnetError);
  assert.throws(() => bareAddress('nope'), FlatnetError);
});
