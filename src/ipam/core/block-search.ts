import { type Bitmap, BLOCK_BITS, type NodeRef } from '../model/block.js';
import { blockOf, freeOffsets } from './bitmap.js';
import type { IntervalSet } from '../../net/intervals.js';
import { childSpan, openChildren, treeDepth } from './summary-tree.js';

/**
 * Finding a block with room: descend the summary tree from the root, skipping children marked full, first at or
 * after `fromBlock`, then from the start. Cost grows with the tree's depth, not with the pool's size or fill.
 */
export async function findOpenBlock(
  hostBits: number,
  allowed: IntervalSet,
  fromBlock: bigint,
  readNode: (ref: NodeRef) => Promise<Bitmap>,
  skip: (block: bigint) => boolean,
): Promise<bigint | undefined> {
  const depth = treeDepth(hostBits);
  if (depth === 1) return allowed.length > 0 && !skip(0n) ? 0n : undefined;
  const cache = new Map<string, Bitmap>();
  const read = async (ref: NodeRef): Promise<Bitmap> => {
    const k = `${ref.level}:${ref.index}`;
    let bits = cache.get(k);
    if (!bits) cache.set(k, (bits = await readNode(ref)));
    return bits;
  };
  const descend = async (node: NodeRef, from: bigint): Promise<bigint | undefined> => {
    for (const c of openChildren(node, await read(node), allowed, from)) {
      if (node.level === 1) {
        const block = childSpan(node, c).start >> BigInt(BLOCK_BITS);
        if (!skip(block)) return block;
        continue;
      }
      const found = await descend(
        { level: node.level - 1, index: (node.index << BigInt(BLOCK_BITS)) + BigInt(c) },
        from,
      );
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const root = { level: depth - 1, index: 0n };
  return (await descend(root, fromBlock << BigInt(BLOCK_BITS))) ?? (await descend(root, 0n));
}

/** The exact answer when the hints are exhausted: the first block (not skipped) with an allowed free offset. */
export function scanForOpenBlock(
  blocks: Map<bigint, Bitmap>,
  allowed: IntervalSet,
  skip: (block: bigint) => boolean,
): bigint | undefined {
  for (const piece of allowed) {
    for (let b = blockOf(piece.start); b <= blockOf(piece.end); b++) {
      if (skip(b)) continue;
      const bits = blocks.get(b);
      if (!bits || freeOffsets(bits, b, [piece], 1).length > 0) return b;
    }
  }
  return undefined;
}
