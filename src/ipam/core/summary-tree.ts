import { ancestors, BLOCK_BITS, type Bitmap, FANOUT, type NodeRef, treeDepth } from '../model/block.js';

export { ancestors, treeDepth };
import { getBit } from './bitmap.js';
import { type Interval, type IntervalSet, intersect } from '../../net/intervals.js';

/**
 * The summary tree above the blocks: a level-k node (k >= 1) covers 256 children of level k-1 (level 0 = blocks)
 * and its bit c means "child c is full". Node index at level k = offset >> (8 * (k + 1)). The tree only
 * speeds up the search for a non-full block; the blocks themselves decide.
 */

/** The bit inside the level-k node that stands for the subtree holding this block. */
export function childBit(block: bigint, level: number): number {
  return Number((block >> BigInt(BLOCK_BITS * (level - 1))) & BigInt(FANOUT - 1));
}

/** Offsets covered by child c of a level-k node. */
export function childSpan(node: NodeRef, child: number): Interval {
  const shift = BigInt(BLOCK_BITS * node.level);
  const start = ((node.index << BigInt(BLOCK_BITS)) + BigInt(child)) << shift;
  return { start, end: start + (1n << shift) - 1n };
}

/** Children of a node, in order, that are not marked full and hold some allowed offset at or after `from`. */
export function openChildren(node: NodeRef, bits: Bitmap, allowed: IntervalSet, from: bigint): number[] {
  const out: number[] = [];
  for (let c = 0; c < FANOUT; c++) {
    if (getBit(bits, c)) continue;
    const span = childSpan(node, c);
    if (span.end < from) continue;
    if (intersect(allowed, [span]).length > 0) out.push(c);
  }
  return out;
}

/** A node is full when every child holding an allowed offset is marked full. */
export function nodeFull(node: NodeRef, bits: Bitmap, allowed: IntervalSet): boolean {
  return openChildren(node, bits, allowed, 0n).length === 0;
}

/**
 * After a block changed, the summary bits on its path that must change: level k's bit for the subtree holding
 * the block becomes "that subtree is full". Returns the new node bitmaps (undefined = unchanged), lowest first.
 */
export function pathUpdate(
  block: bigint,
  hostBits: number,
  blockIsFull: boolean,
  nodes: readonly Bitmap[],
  allowed: IntervalSet,
  withBitFn: (b: Bitmap, i: number, on: boolean) => Bitmap,
): (Bitmap | undefined)[] {
  const refs = ancestors(block, hostBits);
  const out: (Bitmap | undefined)[] = [];
  let childFull = blockIsFull;
  let changedBelow = true;
  refs.forEach((ref, i) => {
    const bits = nodes[i] as Bitmap;
    const bit = childBit(block, ref.level);
    if (!changedBelow || getBit(bits, bit) === childFull) {
      out.push(undefined);
      changedBelow = false;
      return;
    }
    const next = withBitFn(bits, bit, childFull);
    out.push(next);
    childFull = nodeFull(ref, next, allowed);
    changedBelow = childFull !== nodeFull(ref, bits, allowed);
  });
  return out;
}
