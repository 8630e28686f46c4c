import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blockCells,
  blockTally,
  type Cell,
  mapBlocks,
  mapPage,
  positionOf,
  recordsNeeded,
} from '../../src/dashboard/block-cells.js';
import { withBit } from '../../src/ipam/core/bitmap.js';
import { conflictRecord } from '../../src/ipam/core/conflicts.js';
import { type Bitmap, emptyBitmap } from '../../src/ipam/model/block.js';
import type { CoolingEntry, ReleasedRecord } from '../../src/ipam/model/cooling-record.js';
import type { AssignmentRead, PoolConfig } from '../../src/ipam/model/records.js';
import { parseSubnet } from '../../src/net/address.js';
import { IpamKeys } from '../../src/store/keys.js';
import { changeOfKey } from '../../src/store/change-watch.js';

/** The pool map's pure rules: each cell's state and holder, block tallies, and paging a /8's block list. */
const subnet = parseSubnet('10.9.0.0/16');
const policy = { cooldownSec: 300, stickySec: 86_400 };
const NOW = 2_000_000;
const config: PoolConfig = {
  subnet: '10.9.0.0/16',
  gateway: '10.9.0.1',
  ranges: [{ start: '10.9.1.10', end: '10.9.2.200', origin: 'admin', createdAt: 't' }],
  hostRanges: [{ start: '10.9.0.1', end: '10.9.0.254', createdAt: 't' }],
  reservations: [{ address: '10.9.1.20', kind: 'aux', holders: { h1: 1 } }],
  claims: [],
};
const held = (extra: object = {}): AssignmentRead => ({
  assignment: { hostId: 'h1', since: '2026-01-01T00:00:00.000Z', poolId: '10.9.0.0/16', ...extra },
});

function bits(...on: number[]): Bitmap {
  return on.reduce((b, i) => withBit(b, i, true), emptyBitmap());
}

function cellsOf(o: {
  block: bigint;
  bits?: Bitmap;
  cooling?: [number, CoolingEntry][];
  assignments?: [string, AssignmentRead][];
  released?: [string, ReleasedRecord][];
  s?: typeof subnet;
  c?: PoolConfig;
}): Map<string, Cell> {
  const cells = blockCells({
    subnet: o.s ?? subnet,
    config: o.c ?? config,
    block: o.block,
    bits: o.bits ?? emptyBitmap(),
    cooling: new Map(o.cooling ?? []),
    assignments: new Map(o.assignments ?? []),
    released: new Map(o.released ?? []),
    policy,
    now: NOW,
  });
  return new Map(cells.map((c) => [c.address, c]));
}

test('each address of a block gets its state, and held ones their holder', () => {
  const conflict = conflictRecord('10.9.0.0/16', { mac: '02:00:00:00:00:09', seenAt: 's', seenBy: 'h2' });
  const released: ReleasedRecord = {
    hostId: 'h2',
    since: 'a',
    poolId: '10.9.0.0/16',
    endpointName: 'api',
    releasedAt: 'r',
  };
  const cells = cellsOf({
    block: 1n,
    bits: bits(11, 12, 13),
    assignments: [
      ['10.9.1.11', held({ containerName: 'web', containerId: 'abc', endpointName: 'web' })],
      ['10.9.1.12', { assignment: conflict }],
      // 10.9.1.13: a bit without a readable record
    ],
    cooling: [
      [30, { releasedAt: NOW - 10, parked: false }],
      [31, { releasedAt: NOW - 10, parked: true }],
      [32, { releasedAt: NOW - 1000, parked: false }],
    ],
    released: [['10.9.1.31', released]],
  });
  assert.equal(cells.size, 256);
  assert.deepEqual(cells.get('10.9.1.11'), {
    bit: 11,
    address: '10.9.1.11',
    state: 'held',
    hostId: 'h1',
    since: '2026-01-01T00:00:00.000Z',
    containerName: 'web',
    containerId: 'abc',
    endpointName: 'web',
  });
  assert.deepEqual(cells.get('10.9.1.12'), {
    bit: 12,
    address: '10.9.1.12',
    state: 'conflict',
    since: 's',
    seenBy: 'h2',
    mac: '02:00:00:00:00:09',
  });
  assert.equal(cells.get('10.9.1.13')?.state, 'held');
  assert.equal(cells.get('10.9.1.13')?.hostId, undefined);
  assert.equal(cells.get('10.9.1.30')?.state, 'cooling');
  assert.equal(cells.get('10.9.1.31')?.state, 'parked');
  assert.equal(cells.get('10.9.1.31')?.endpointName, 'api');
  assert.equal(cells.get('10.9.1.31')?.hostId, 'h2');
  assert.equal(cells.get('10.9.1.32')?.state, 'free', 'its cooldown is over');
  assert.equal(cells.get('10.9.1.20')?.state, 'gateway-aux');
  assert.equal(cells.get('10.9.1.20')?.kind, 'aux');
  assert.equal(cells.get('10.9.1.9')?.state, 'outside');
  assert.equal(cells.get('10.9.1.10')?.state, 'free');
});

test('the host range, the gateway, network and broadcast addresses', () => {
  const first = cellsOf({ block: 0n });
  assert.equal(first.get('10.9.0.0')?.state, 'outside');
  assert.equal(first.get('10.9.0.1')?.state, 'gateway-aux');
  assert.equal(first.get('10.9.0.1')?.kind, 'gateway');
  assert.equal(first.get('10.9.0.2')?.state, 'host-range');
  assert.equal(first.get('10.9.0.255')?.state, 'outside');
  const wide: PoolConfig = {
    ...config,
    ranges: [{ start: '10.9.0.0', end: '10.9.255.255', origin: 'admin', createdAt: 't' }],
  };
  const last = cellsOf({ block: 255n, c: wide });
  assert.equal(last.get('10.9.255.255')?.state, 'outside', 'broadcast is never a container address');
  assert.equal(last.get('10.9.255.254')?.state, 'free');
});

test('a pool smaller than a block has only its own cells; IPv6 blocks work the same', () => {
  const small = parseSubnet('10.8.0.0/28');
  const c: PoolConfig = {
    ...config,
    subnet: '10.8.0.0/28',
    gateway: undefined,
    hostRanges: [],
    reservations: [],
    ranges: [{ start: '10.8.0.1', end: '10.8.0.14', origin: 'admin', createdAt: 't' }],
  };
  assert.equal(cellsOf({ block: 0n, s: small, c }).size, 16);
  const v6 = parseSubnet('fd00::/64');
  const c6: PoolConfig = {
    ...c,
    subnet: 'fd00::/64',
    ranges: [{ start: 'fd00::100', end: 'fd00::1ff', origin: 'admin', createdAt: 't' }],
  };
  const cells = cellsOf({ block: 1n, s: v6, c: c6, bits: bits(5), assignments: [['fd00::105', held()]] });
  assert.equal(cells.get('fd00::105')?.state, 'held');
  assert.equal(cells.get('fd00::100')?.state, 'free');
  assert.deepEqual(recordsNeeded(v6, 1n, bits(5), new Map([[7, { releasedAt: 1, parked: false }]])), [
    'fd00::105',
    'fd00::107',
  ]);
});

test('a block tally counts taken bits, addresses still cooling and the block addresses inside the ranges', () => {
  const t = blockTally(
    subnet,
    config,
    1n,
    bits(11, 12),
    new Map([
      [30, { releasedAt: NOW, parked: false }],
      [31, { releasedAt: 0, parked: false }],
    ]),
    policy,
    NOW,
  );
  assert.deepEqual(t, { block: '1', first: '10.9.1.0', last: '10.9.1.255', inRanges: 246, taken: 2, cooling: 1 });
});

test('the block list of a /8 is paged without enumerating it, and an address finds its page', () => {
  const big = parseSubnet('10.0.0.0/8');
  const c: PoolConfig = {
    ...config,
    subnet: '10.0.0.0/8',
    gateway: undefined,
    reservations: [],
    ranges: [{ start: '10.0.0.0', end: '10.255.255.255', origin: 'admin', createdAt: 't' }],
    hostRanges: [],
  };
  const blocks = mapBlocks(c, big);
  const page = mapPage(blocks, 65_500n, 64);
  assert.equal(page.total, 65_536n);
  assert.equal(page.blocks.length, 36);
  assert.equal(page.blocks[0], 65_500n);
  assert.equal(positionOf(blocks, 65_535n), 65_535n);
  // only the blocks the ranges and host ranges touch are listed
  const listed = mapBlocks(config, subnet);
  assert.deepEqual(mapPage(listed, 0n, 10), { total: 3n, blocks: [0n, 1n, 2n] });
  assert.equal(positionOf(listed, 2n), 2n);
  assert.equal(positionOf(listed, 3n), undefined);
});

test('a changed etcd key names its pool and block, or the whole pool', () => {
  const keys = new IpamKeys('/fn');
  const s = parseSubnet('10.9.0.0/16');
  assert.deepEqual(changeOfKey(keys, keys.block(s, 0x1an)), { subnet: '10.9.0.0/16', block: '1a' });
  assert.deepEqual(changeOfKey(keys, keys.cool(s, 2n)), { subnet: '10.9.0.0/16', block: '2' });
  assert.deepEqual(changeOfKey(keys, keys.addr(s, '10.9.3.7')), { subnet: '10.9.0.0/16', block: '3' });
  assert.deepEqual(changeOfKey(keys, keys.released(s, '10.9.4.7')), { subnet: '10.9.0.0/16', block: '4' });
  assert.deepEqual(changeOfKey(keys, keys.config(s)), { subnet: '10.9.0.0/16', block: 'pool' });
  assert.deepEqual(changeOfKey(keys, keys.claim(s, 'h1')), { subnet: '10.9.0.0/16', block: 'pool' });
  const v6 = parseSubnet('fd00::/64');
  assert.deepEqual(changeOfKey(keys, keys.addr(v6, 'fd00::1:5')), { subnet: 'fd00::/64', block: '100' });
  assert.equal(changeOfKey(keys, keys.summary(s, 0, 0n)), undefined);
  assert.equal(changeOfKey(keys, '/fn/txn/abc'), undefined);
  assert.equal(changeOfKey(keys, `${keys.allPoolsPrefix()}garbage/addr/x`), undefined);
});
