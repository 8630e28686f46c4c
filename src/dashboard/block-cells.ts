import { addressAt, offsetIn, type Subnet } from '../net/address.js';
import { contains, count, intersect, type Interval, nthMember, union } from '../net/intervals.js';
import { blockSpan, getBit, popcount } from '../ipam/core/bitmap.js';
import { isConflict } from '../ipam/core/conflicts.js';
import { heldBack } from '../ipam/core/cooling-rules.js';
import { interval, rangeSet } from '../ipam/core/pool-rules.js';
import type { Bitmap } from '../ipam/model/block.js';
import type { Cooling, CoolingPolicy, ReleasedRecord } from '../ipam/model/cooling-record.js';
import type { AssignmentRead, PoolConfig } from '../ipam/model/records.js';

/**
 * The pool map, the pure part: which state each address of a 256-address block is in, what one block counts,
 * and which blocks a pool's map lists (those its ranges and host ranges touch), paged without enumerating them.
 */

export type CellState = 'held' | 'cooling' | 'parked' | 'conflict' | 'gateway-aux' | 'host-range' | 'outside' | 'free';

export const CELL_STATES: readonly CellState[] = [
  'held',
  'cooling',
  'parked',
  'conflict',
  'gateway-aux',
  'host-range',
  'outside',
  'free',
];

/** One address of the map, with who holds it (held), the last holder (cooling, parked) or the foreign MAC. */
export interface Cell {
  /** Position in the block, 0-255. */
  bit: number;
  address: string;
  state: CellState;
  hostId?: string;
  containerName?: string;
  containerId?: string;
  endpointName?: string;
  since?: string;
  releasedAt?: string;
  /** gateway or aux, for gateway-aux. */
  kind?: string;
  mac?: string;
  seenBy?: string;
}

/** Everything one block's cells are decided from, as the block repository reads it. */
export interface BlockFacts {
  subnet: Subnet;
  config: PoolConfig;
  block: bigint;
  bits: Bitmap;
  cooling: Cooling;
  assignments: ReadonlyMap<string, AssignmentRead>;
  released: ReadonlyMap<string, ReleasedRecord>;
  policy: CoolingPolicy;
  /** Seconds since the epoch. */
  now: number;
}

/** The offsets of the block that exist in the subnet (a pool smaller than a /24 has fewer than 256). */
export function blockOffsets(subnet: Subnet, block: bigint): Interval | undefined {
  const span = blockSpan(block);
  const end = span.end < subnet.size - 1n ? span.end : subnet.size - 1n;
  return span.start > end ? undefined : { start: span.start, end };
}

/** The addresses whose records decide a cell: those with a block bit (held, conflict) or a cooling entry. */
export function recordsNeeded(subnet: Subnet, block: bigint, bits: Bitmap, cooling: Cooling): string[] {
  const span = blockOffsets(subnet, block);
  if (!span) return [];
  const out: string[] = [];
  for (let o = span.start; o <= span.end; o++) {
    const bit = Number(o - span.start);
    if (getBit(bits, bit) || cooling.has(bit)) out.push(addressAt(subnet, o));
  }
  return out;
}

function reservationKinds(config: PoolConfig, subnet: Subnet): Map<bigint, string> {
  const out = new Map<bigint, string>();
  for (const r of config.reservations) out.set(offsetIn(subnet, r.address), r.kind);
  if (config.gateway) out.set(offsetIn(subnet, config.gateway), 'gateway');
  return out;
}

/** The cells of one block, in address order. */
export function blockCells(f: BlockFacts): Cell[] {
  const span = blockOffsets(f.subnet, f.block);
  if (!span) return [];
  const ranges = rangeSet(f.config, f.subnet);
  const hostRanges = f.config.hostRanges.map((r) => interval(f.subnet, r.start, r.end));
  const reserved = reservationKinds(f.config, f.subnet);
  const broadcastOrNetwork = (o: bigint): boolean =>
    f.subnet.family === 4 && f.subnet.hostBits >= 2 && (o === 0n || o === f.subnet.size - 1n);
  const cells: Cell[] = [];
  for (let o = span.start; o <= span.end; o++) {
    const bit = Number(o - (f.block << 8n));
    const address = addressAt(f.subnet, o);
    const base = { bit, address };
    if (getBit(f.bits, bit)) {
      const read = f.assignments.get(address);
      if (isConflict(read)) {
        const c = read.assignment.conflict;
        cells.push({ ...base, state: 'conflict', since: c.seenAt, seenBy: c.seenBy, ...(c.mac ? { mac: c.mac } : {}) });
      } else if (read !== undefined && read !== 'unreadable') {
        const a = read.assignment;
        cells.push({
          ...base,
          state: 'held',
          hostId: a.hostId,
          since: a.since,
          ...pick(a, ['containerName', 'containerId', 'endpointName']),
        });
      } else {
        // A bit without a readable record is still taken: no allocator hands it out.
        cells.push({ ...base, state: 'held' });
      }
      continue;
    }
    const kind = reserved.get(o);
    if (kind !== undefined) {
      cells.push({ ...base, state: 'gateway-aux', kind });
      continue;
    }
    const entry = f.cooling.get(bit);
    if (entry && heldBack(entry, f.now, f.policy)) {
      const rel = f.released.get(address);
      cells.push({
        ...base,
        state: entry.parked ? 'parked' : 'cooling',
        releasedAt: new Date(entry.releasedAt * 1000).toISOString(),
        ...(rel ? { hostId: rel.hostId, since: rel.since } : {}),
        ...(rel ? pick(rel, ['containerName', 'containerId', 'endpointName']) : {}),
      });
      continue;
    }
    if (hostRanges.some((r) => o >= r.start && o <= r.end)) cells.push({ ...base, state: 'host-range' });
    else if (!contains(ranges, o) || broadcastOrNetwork(o)) cells.push({ ...base, state: 'outside' });
    else cells.push({ ...base, state: 'free' });
  }
  return cells;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** What a block holds, for the block list: taken bits (containers and conflicts) and addresses held back. */
export interface BlockTally {
  block: string;
  first: string;
  last: string;
  /** Addresses of the block inside the pool's ranges. */
  inRanges: number;
  taken: number;
  cooling: number;
}

export function blockTally(
  subnet: Subnet,
  config: PoolConfig,
  block: bigint,
  bits: Bitmap,
  cooling: Cooling,
  policy: CoolingPolicy,
  now: number,
): BlockTally {
  const span = blockOffsets(subnet, block) ?? blockSpan(block);
  let held = 0;
  for (const [bit, e] of cooling) if (!getBit(bits, bit) && heldBack(e, now, policy)) held++;
  return {
    block: block.toString(16),
    first: addressAt(subnet, span.start),
    last: addressAt(subnet, span.end),
    inRanges: Number(count(intersect(rangeSet(config, subnet), [span]))),
    taken: popcount(bits),
    cooling: held,
  };
}

/**
 * The blocks a pool's map lists, as intervals of block indices: every block its ranges or host ranges touch, so a
 * /8 with one /20 range lists 16 blocks, and a /8 range lists 65,536 without any of them being enumerated.
 */
export function mapBlocks(config: PoolConfig, subnet: Subnet): Interval[] {
  const spans = [...rangeSet(config, subnet), ...config.hostRanges.map((r) => interval(subnet, r.start, r.end))];
  return union(
    [],
    spans.map((s) => ({ start: s.start >> 8n, end: s.end >> 8n })),
  );
}

/** Blocks [from, from + n) of the map's list (by position), and how many it lists in all. */
export function mapPage(blocks: Interval[], from: bigint, n: number): { total: bigint; blocks: bigint[] } {
  const total = count(blocks);
  const out: bigint[] = [];
  for (let k = from; k < from + BigInt(n) && k < total; k++) {
    const b = nthMember(blocks, k);
    if (b === undefined) break;
    out.push(b);
  }
  return { total, blocks: out };
}

/** The position of a block in the map's list, undefined when the map does not list it. */
export function positionOf(blocks: Interval[], block: bigint): bigint | undefined {
  let before = 0n;
  for (const b of blocks) {
    if (block >= b.start && block <= b.end) return before + (block - b.start);
    if (block < b.start) return undefined;
    before += b.end - b.start + 1n;
  }
  return undefined;
}
