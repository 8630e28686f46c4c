import { type Interval, type IntervalSet, intersect } from './intervals.js';

/**
 * One block = 256 consecutive offsets of a pool; its bitmap (32 bytes) marks offsets assigned to containers.
 * Summary nodes reuse the same 256-bit shape with "child is full" bits.
 */
export const BLOCK_BITS = 8;
export const FANOUT = 256;
export const BITMAP_BYTES = FANOUT / 8;

export type Bitmap = Uint8Array;

export function emptyBitmap(): Bitmap {
  return new Uint8Array(BITMAP_BYTES);
}

/** Stored bytes to a bitmap; anything malformed reads as empty (summaries are hints, blocks are checked). */
export function bitmapFrom(bytes: Uint8Array | undefined): Bitmap {
  const out = emptyBitmap();
  if (bytes && bytes.length === BITMAP_BYTES) out.set(bytes);
  return out;
}

export function getBit(b: Bitmap, i: number): boolean {
  return ((b[i >> 3] as number) & (1 << (i & 7))) !== 0;
}

export function withBit(b: Bitmap, i: number, on: boolean): Bitmap {
  const out = Uint8Array.from(b);
  const byte = out[i >> 3] as number;
  out[i >> 3] = on ? byte | (1 << (i & 7)) : byte & ~(1 << (i & 7));
  return out;
}

export function popcount(b: Bitmap): number {
  let n = 0;
  for (const byte of b) for (let v = byte; v !== 0; v &= v - 1) n++;
  return n;
}

export function blockOf(offset: bigint): bigint {
  return offset >> BigInt(BLOCK_BITS);
}

export function bitOf(offset: bigint): number {
  return Number(offset & BigInt(FANOUT - 1));
}

export function blockSpan(block: bigint): Interval {
  const start = block << BigInt(BLOCK_BITS);
  return { start, end: start + BigInt(FANOUT - 1) };
}

/** Up to n free offsets of the block that the allowed set permits, lowest first. */
export function freeOffsets(b: Bitmap, block: bigint, allowed: IntervalSet, n: number): bigint[] {
  const out: bigint[] = [];
  if (n <= 0) return out;
  for (const piece of intersect(allowed, [blockSpan(block)])) {
    for (let o = piece.start; o <= piece.end; o++) {
      if (!getBit(b, bitOf(o))) {
        out.push(o);
        if (out.length >= n) return out;
      }
    }
  }
  return out;
}

/** A block is full when no offset the allowed set permits is free in it. */
export function blockFull(b: Bitmap, block: bigint, allowed: IntervalSet): boolean {
  return freeOffsets(b, block, allowed, 1).length === 0;
}
