import { contains, type IntervalSet } from '../../net/intervals.js';
import { type Bitmap, FANOUT } from '../model/block.js';
import type { Cooling, CoolingEntry, CoolingPolicy } from '../model/cooling-record.js';
import { getBit } from './bitmap.js';

/**
 * The cooldown and sticky rules over a block's cooling entries. A released address stays out of reuse for the
 * cooldown, and for the sticky time when a named container released it (parked for that name); after that it
 * is free again, and at exhaustion the oldest one is reused before anything fails.
 */

/** True while the entry keeps its address from being handed out. */
export function heldBack(e: CoolingEntry, now: number, policy: CoolingPolicy): boolean {
  if (now < e.releasedAt + policy.cooldownSec) return true;
  return e.parked && now < e.releasedAt + policy.stickySec;
}

/** The block's assigned bits plus the offsets still cooling: what an allocation must skip. */
export function occupied(bits: Bitmap, cooling: Cooling | undefined, now: number, policy: CoolingPolicy): Bitmap {
  if (!cooling || cooling.size === 0) return bits;
  const out = Uint8Array.from(bits);
  for (const [bit, e] of cooling)
    if (heldBack(e, now, policy)) out[bit >> 3] = (out[bit >> 3] as number) | (1 << (bit & 7));
  return out;
}

/** Entries whose time is over, lowest bit first (at most `limit`): their records can go. */
export function expiredBits(cooling: Cooling | undefined, now: number, policy: CoolingPolicy, limit: number): number[] {
  const out: number[] = [];
  if (!cooling) return out;
  for (const [bit, e] of [...cooling].sort((a, b) => a[0] - b[0])) {
    if (out.length >= limit) break;
    if (!heldBack(e, now, policy)) out.push(bit);
  }
  return out;
}

/** Whether a release leaves the address cooling (with a released record), and parked for its name. */
export function coolingOnRelease(named: boolean, now: number, policy: CoolingPolicy): CoolingEntry | undefined {
  const parked = named && policy.stickySec > 0;
  if (!parked && policy.cooldownSec <= 0) return undefined;
  return { releasedAt: now, parked };
}

export interface CooledPick {
  block: bigint;
  offset: bigint;
  entry: CoolingEntry;
}

/** Exhaustion order: plain cooling before parked for a name, then the one released longest ago. */
function better(a: CooledPick, b: CooledPick | undefined): boolean {
  if (!b) return true;
  if (a.entry.parked !== b.entry.parked) return !a.entry.parked;
  if (a.entry.releasedAt !== b.entry.releasedAt) return a.entry.releasedAt < b.entry.releasedAt;
  return a.offset < b.offset;
}

/**
 * At exhaustion, the cooling address to reuse: allowed, not assigned, the best by the order above. Reads every
 * cooling entry of the pool; only called once nothing else is free.
 */
export function oldestCooled(
  blocks: ReadonlyMap<bigint, { bits: Bitmap; cooling: Cooling }>,
  allowed: IntervalSet,
): CooledPick | undefined {
  let best: CooledPick | undefined;
  for (const [block, { bits, cooling }] of blocks) {
    for (const [bit, entry] of cooling) {
      if (bit >= FANOUT || getBit(bits, bit)) continue;
      const offset = (block << 8n) + BigInt(bit);
      if (!contains(allowed, offset)) continue;
      const pick = { block, offset, entry };
      if (better(pick, best)) best = pick;
    }
  }
  return best;
}
