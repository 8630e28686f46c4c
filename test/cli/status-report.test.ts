import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStatus, formatStatus } from '../../src/cli/status-report.js';
import type { PoolSummary } from '../../src/ipam/contract.js';
import type { HolderScan } from '../../src/ipam/services/cluster-census.js';
import type { HostInfo } from '../../src/store/host-registry.js';

const pool: PoolSummary = {
  subnet: '10.0.0.0/24',
  family: 4,
  gateway: '10.0.0.1',
  ranges: [
    { subnet: '10.0.0.0/24', start: '10.0.0.100', end: '10.0.0.199', origin: 'admin', size: '100', createdAt: 't' },
  ],
  hostRanges: [],
  reservations: [],
  claims: [],
  size: '100',
  used: 3,
  free: '97',
};
const host = (hostId: string, alive: boolean): HostInfo => ({
  hostId,
  alive,
  hostname: hostId,
  version: '0.1.0',
  startedAt: 't',
  lastSeen: 't2',
});
const holders = (conflicts: number, held: Record<string, number>): HolderScan => ({
  conflicts: new Map([['10.0.0.0/24', conflicts]]),
  heldByHost: new Map(Object.entries(held)),
});

test('hosts are up, down, or unknown when they hold addresses but never registered', () => {
  const report = buildStatus([pool], [host('a', true), host('b', false)], holders(0, { a: 1, b: 1, z: 1, gone: 0 }));
  assert.deepEqual(
    report.hosts.map((h) => [h.hostId, h.state, h.addresses]),
    [
      ['a', 'up', 1],
      ['b', 'down', 1],
      ['z', 'unknown', 1],
    ],
  );
  const text = formatStatus(report);
  assert.match(text, /^POOL\s+GATEWAY\s+SIZE\s+USED\s+CONFLICTS\s+FREE/);
  assert.match(text, /10\.0\.0\.0\/24\s+10\.0\.0\.1\s+100\s+3\s+0\s+97\s+10\.0\.0\.100-10\.0\.0\.199/);
  assert.match(text, /\nb\s+b\s+down\s+t2\s+1/);
});

test('conflicts are counted per pool apart from what containers hold (the pool count includes them)', () => {
  const report = buildStatus([pool], [host('a', true)], holders(2, { a: 1 }));
  assert.deepEqual(
    report.pools.map((p) => [p.subnet, p.used, p.conflicts, p.free]),
    [['10.0.0.0/24', 1, 2, '97']],
  );
  assert.match(formatStatus(report), /10\.0\.0\.0\/24\s+10\.0\.0\.1\s+100\s+1\s+2\s+97\s/);
});

test('an empty cluster says what to do next', () => {
  const text = formatStatus(buildStatus([], [], { conflicts: new Map(), heldByHost: new Map() }));
  assert.match(text, /flatnet ip-range add/);
  assert.match(text, /flatnet server/);
});
