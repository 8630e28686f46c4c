/**
 * The stored shape of a block and of a summary node: 256 bits, 32 bytes. A block covers 256 consecutive offsets
 * of a pool (bit i = offset block*256+i is assigned to a container); a level-k summary node covers 256 children
 * of level k-1 (bit c = "child c is full"). Store decodes with bitmapFrom; the rules over the bits are in core/.
 */
export const BLOCK_BITS = 8;
export const FANOUT = 256;
export const BITMAP_BYTES = FANOUT / 8;

export type Bitmap = Uint8Array;

/** A summary node: level >= 1, index = offset >> (8 * (level + 1)). */
export interface NodeRef {
  level: number;
  index: bigint;
}

/*
 * Which summary nodes lie above a block is part of the stored layout (store reads them with the block), so it
 * lives here; what their bits mean is core/summary-tree.ts.
 */

/** Levels of the tree counting the blocks: ceil(hostBits / 8), at least 1. */
export function treeDepth(hostBits: number): number {
  return Math.max(1, Math.ceil(hostBits / BLOCK_BITS));
}

/** Summary nodes from level 1 up to the root that lie above this block. */
export function ancestors(block: bigint, hostBits: number): NodeRef[] {
  const out: NodeRef[] = [];
  for (let level = 1; level < treeDepth(hostBits); level++) {
    out.push({ level, index: block >> BigInt(BLOCK_BITS * level) });
  }
  return out;
}

export function emptyBitmap(): Bitmap {
  return new Uint8Array(BITMAP_BYTES);
}

/** Stored bytes to a bitmap; anything malformed reads as empty (summaries are hints, blocks are checked). */
export function bitmapFrom(bytes: Uint8Array | undefined): Bitmap {
  const out = emptyBitmap();
  if (bytes && bytes.length === BITMAP_BYTES) out.set(bytes);
  return out;
}
