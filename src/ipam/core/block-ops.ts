import { contains, type Interval, type IntervalSet, intersect } from '../../net/intervals.js';
import type { Bitmap } from '../model/block.js';
import type { AssignmentRead } from '../model/records.js';
import { bitOf, blockFull, blockOf, freeOffsets, getBit, withBit } from './bitmap.js';
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
}

/** The new bits of the block and of the summary nodes that change with them (undefined = unchanged). */
export interface BlockEdit {
  bits: Bitmap;
  nodes: (Bitmap | undefined)[];
}

/** The summary path after the block's bits became `bits`: "full" is judged against the pool's allocatable set. */
export function summaryEdit(state: BlockState, bits: Bitmap, allocatable: IntervalSet): BlockEdit {
  const full = blockFull(bits, state.block, allocatable);
  return { bits, nodes: pathUpdate(state.block, state.hostBits, full, state.nodes, allocatable, withBit) };
}

/** Up to n free offsets the allowed set permits, lowest first; none = the block has no room for this pool ID. */
export function autoAssign(
  state: BlockState,
  n: number,
  allowed: IntervalSet,
  allocatable: IntervalSet,
): { offsets: bigint[]; edit: BlockEdit | undefined } {
  const offsets = freeOffsets(state.bits, state.block, allowed, n);
  if (offsets.length === 0) return { offsets, edit: undefined };
  let bits = state.bits;
  for (const o of offsets) bits = withBit(bits, bitOf(o), true);
  return { offsets, edit: summaryEdit(state, bits, allocatable) };
}

export type SpecificAssign = { outcome: 'assigned'; edit: BlockEdit } | { outcome: 'not-allowed' } | { outcome: 'taken' };

/** One named offset (a container's --ip): granted only when allowed and free. */
export function assignOffset(state: BlockState, offset: bigint, allowed: IntervalSet, allocatable: IntervalSet): SpecificAssign {
  if (blockOf(offset) !== state.block) throw new Error('assignOffset: offset outside the block');
  if (!contains(allowed, offset)) return { outcome: 'not-allowed' };
  if (getBit(state.bits, bitOf(offset))) return { outcome: 'taken' };
  return { outcome: 'assigned', edit: summaryEdit(state, withBit(state.bits, bitOf(offset), true), allocatable) };
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
  }
  return { outcomes, freed, foreign, edit: freed.length > 0 ? summaryEdit(state, bits, allocatable) : undefined };
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
