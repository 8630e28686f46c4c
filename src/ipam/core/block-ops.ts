import { contains, type Interval, type IntervalSet, intersect } from '../../net/intervals.js';
import type { Bitmap } from '../model/block.js';
import { type Cooling, type CoolingEntry, type CoolingPolicy, NO_COOLING } from '../model/cooling-record.js';
import type { AssignmentRead } from '../model/records.js';
import { bitOf, blockFull, blockOf, freeOffsets, getBit, withBit } from './bitmap.js';
import { coolingOnRelease, expiredBits, occupied } from './cooling-rules.js';
import { pathUpdate } from './summary-tree.js';

/**
 * Allocation and release inside one block, as pure functions over what was read: each says what changes (the
 * block's bits and the summary nodes above it) and what it decided per request, and touches nothing.
 */

/** A block as read, with the summary nodes above it (lowest level first). */
export interface BlockState {
  block: bigint;
  hostBits: number;
  bits: Bitmap;
  nodes: readonly Bitmap[];
  /** Released offsets still cooling (absent = none); `now` (epoch seconds) and `policy` judge them. */
  cooling?: Cooling;
  now?: number;
  policy?: CoolingPolicy;
}

/** The new bits of the block and of the summary nodes that change with them (undefined = unchanged). */
export interface BlockEdit {
  bits: Bitmap;
  nodes: (Bitmap | undefined)[];
  /** The block's cooling entries after the change. */
  cooling: Cooling;
  /** Offsets whose released record goes (reused, or their time is over). */
  dropReleased: bigint[];
}

/** Expired records cleared per allocation (within its budget): a few, so that clearing never crowds out the allocation. */
export const RECLAIM_PER_TXN = 8;

function now(state: BlockState): number {
  return state.now ?? Math.floor(Date.now() / 1000);
}

/** The block's assigned bits plus what still cools: an allocation skips both. */
export function occupiedOf(
  state: BlockState,
  bits: Bitmap = state.bits,
  cooling: Cooling | undefined = state.cooling,
): Bitmap {
  return occupied(bits, cooling, now(state), state.policy ?? NO_COOLING);
}

/**
 * The summary path after the block's bits became `bits`: "full" is judged against the pool's allocatable set,
 * counting cooling offsets as taken (a block that only has cooling room is left to the exhaustion scan).
 */
export function summaryEdit(
  state: BlockState,
  bits: Bitmap,
  allocatable: IntervalSet,
  cooling: Cooling = state.cooling ?? new Map(),
  dropReleased: bigint[] = [],
): BlockEdit {
  const full = blockFull(occupiedOf(state, bits, cooling), state.block, allocatable);
  return {
    bits,
    cooling,
    dropReleased,
    nodes: pathUpdate(state.block, state.hostBits, full, state.nodes, allocatable, withBit),
  };
}

/** What an allocation commit may spend on the addresses it writes (the store derives it from etcd's limits). */
export interface OpsBudget {
  /** Operations the i-th address costs besides dropping an expired record (its addr key, its name key). */
  costOf: (i: number) => number;
  total: number;
}

/**
 * Up to n free offsets the allowed set permits, lowest first; none = the block has no room for this pool ID.
 * Within `budget`, expired records of handed-out offsets go with them, and a few other expired ones too.
 */
export function autoAssign(
  state: BlockState,
  n: number,
  allowed: IntervalSet,
  allocatable: IntervalSet,
  budget: OpsBudget = { costOf: () => 1, total: Number.POSITIVE_INFINITY },
): { offsets: bigint[]; edit: BlockEdit | undefined } {
  const candidates = freeOffsets(occupiedOf(state), state.block, allowed, n);
  if (candidates.length === 0) return { offsets: candidates, edit: undefined };
  let bits = state.bits;
  const cooling = new Map(state.cooling ?? []);
  const drop: bigint[] = [];
  const offsets: bigint[] = [];
  let spent = 0;
  for (const o of candidates) {
    const cost = budget.costOf(offsets.length) + (cooling.has(bitOf(o)) ? 1 : 0);
    if (offsets.length > 0 && spent + cost > budget.total) break;
    spent += cost;
    offsets.push(o);
    bits = withBit(bits, bitOf(o), true);
    // An expired entry handed out again: its released record goes with it.
    if (cooling.delete(bitOf(o))) drop.push(o);
  }
  const reclaim = Math.max(0, Math.min(RECLAIM_PER_TXN, budget.total - spent));
  for (const bit of expiredBits(cooling, now(state), state.policy ?? NO_COOLING, reclaim)) {
    cooling.delete(bit);
    drop.push((state.block << 8n) + BigInt(bit));
  }
  return { offsets, edit: summaryEdit(state, bits, allocatable, cooling, drop) };
}

export type SpecificAssign =
  { outcome: 'assigned'; edit: BlockEdit; wasCooling: boolean } | { outcome: 'not-allowed' } | { outcome: 'taken' };

/**
 * One named offset: granted when allowed and not assigned. A cooling offset is granted too: a container's --ip
 * pins it on purpose, and the sticky and exhaustion paths reuse cooling addresses by design.
 */
export function assignOffset(
  state: BlockState,
  offset: bigint,
  allowed: IntervalSet,
  allocatable: IntervalSet,
): SpecificAssign {
  if (blockOf(offset) !== state.block) throw new Error('assignOffset: offset outside the block');
  if (!contains(allowed, offset)) return { outcome: 'not-allowed' };
  if (getBit(state.bits, bitOf(offset))) return { outcome: 'taken' };
  const cooling = new Map(state.cooling ?? []);
  const wasCooling = cooling.delete(bitOf(offset));
  const edit = summaryEdit(
    state,
    withBit(state.bits, bitOf(offset), true),
    allocatable,
    cooling,
    wasCooling ? [offset] : [],
  );
  return { outcome: 'assigned', edit, wasCooling };
}

/**
 * Per request: 'container' when freed, 'not-assigned' when no container holds it (it may be a reservation),
 * 'none' when it is left alone (another host's, or named twice in one batch: the first one frees it).
 */
export type ContainerRelease = 'container' | 'not-assigned' | 'none';

export interface ReleaseRequest {
  offset: bigint;
  address: string;
  /** What the address key held when read. */
  held: AssignmentRead | undefined;
}

export interface ReleasePlan {
  outcomes: ContainerRelease[];
  /** Addresses whose assignment goes. */
  freed: string[];
  /** Requests refused because another holder (or no provable one) has the address. */
  foreign: { address: string; owner: string }[];
  /** Freed addresses that now cool, with the entry (their released record is written with the commit). */
  cooled: { address: string; entry: CoolingEntry }[];
  /** undefined when nothing is freed. */
  edit: BlockEdit | undefined;
}

/**
 * Frees what `hostId` holds among the requests, or any holder's with `force`. An unreadable record has no
 * provable owner: only force (the operator's `flatnet ip release`) frees it.
 */
export function releaseInBlock(
  state: BlockState,
  requests: readonly ReleaseRequest[],
  who: { hostId: string; force: boolean },
  allocatable: IntervalSet,
): ReleasePlan {
  const outcomes: ContainerRelease[] = [];
  const freed: string[] = [];
  const foreign: { address: string; owner: string }[] = [];
  const cooled: { address: string; entry: CoolingEntry }[] = [];
  const cooling = new Map(state.cooling ?? []);
  let bits = state.bits;
  for (const r of requests) {
    if (blockOf(r.offset) !== state.block) throw new Error('releaseInBlock: offset outside the block');
    if (r.held === undefined) {
      outcomes.push('not-assigned');
      continue;
    }
    if (freed.includes(r.address)) {
      outcomes.push('none');
      continue;
    }
    const owner = r.held === 'unreadable' ? undefined : r.held.assignment.hostId;
    if (!who.force && owner !== who.hostId) {
      foreign.push({ address: r.address, owner: owner ?? 'unknown (unreadable record)' });
      outcomes.push('none');
      continue;
    }
    bits = withBit(bits, bitOf(r.offset), false);
    freed.push(r.address);
    outcomes.push('container');
    const named = r.held !== 'unreadable' && (r.held.assignment.endpointName ?? '') !== '';
    const entry = coolingOnRelease(named, now(state), state.policy ?? NO_COOLING);
    if (entry) {
      cooling.set(bitOf(r.offset), entry);
      if (r.held !== 'unreadable') cooled.push({ address: r.address, entry });
    } else {
      cooling.delete(bitOf(r.offset));
    }
  }
  return {
    outcomes,
    freed,
    foreign,
    cooled,
    edit: freed.length > 0 ? summaryEdit(state, bits, allocatable, cooling) : undefined,
  };
}

/** True when any container address inside the range is assigned in the given blocks. */
export function anyAssigned(blocks: ReadonlyMap<bigint, Bitmap>, range: Interval): boolean {
  for (const [index, bits] of blocks) {
    for (const piece of intersect([range], [{ start: index << 8n, end: (index << 8n) + 255n }])) {
      for (let o = piece.start; o <= piece.end; o++) if (getBit(bits, Number(o & 255n))) return true;
    }
  }
  return false;
}
