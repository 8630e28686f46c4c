import { type Interval, type IntervalSet, intersect } from '../../net/intervals.js';

import { type Bitmap, BLOCK_BITS, FANOUT } from '../model/block.js';

/** Bit operations on block and summary bitmaps (the stored shape is in model/block.ts). */
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
