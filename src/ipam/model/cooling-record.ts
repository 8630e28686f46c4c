import { z } from 'zod';
import { assignmentSchema } from './records.js';

/**
 * The stored shape of a block's cooling state, in its own key beside the block's 32-byte bitmap (so that a
 * version without cooling still reads the bitmap it knows and merely ignores the cooldown). One 6-byte entry per
 * released offset of the block: bit (1 byte), flags (1 byte: 1 = parked for a container name), release time
 * (uint32 big-endian, seconds since the epoch). Absent or malformed = nothing cooling: cooling only ever
 * delays a reuse, so losing it is harmless.
 */
export interface CoolingEntry {
  /** Seconds since the epoch. */
  releasedAt: number;
  /** Released by a named container (Docker 29+): held for that name for the sticky time. */
  parked: boolean;
}

/** Cooling offsets of one block, by bit (0-255). */
export type Cooling = ReadonlyMap<number, CoolingEntry>;

const ENTRY_BYTES = 6;
const PARKED = 1;

export function encodeCooling(c: Cooling): Uint8Array {
  const bits = [...c.keys()].sort((a, b) => a - b);
  const out = new Uint8Array(bits.length * ENTRY_BYTES);
  const view = new DataView(out.buffer);
  bits.forEach((bit, i) => {
    const e = c.get(bit) as CoolingEntry;
    out[i * ENTRY_BYTES] = bit;
    out[i * ENTRY_BYTES + 1] = e.parked ? PARKED : 0;
    view.setUint32(i * ENTRY_BYTES + 2, Math.max(0, Math.min(0xffffffff, Math.floor(e.releasedAt))));
  });
  return out;
}

export function decodeCooling(bytes: Uint8Array | undefined): Cooling {
  const out = new Map<number, CoolingEntry>();
  if (!bytes || bytes.length % ENTRY_BYTES !== 0) return out;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < bytes.length; i += ENTRY_BYTES) {
    out.set(bytes[i] as number, {
      parked: ((bytes[i + 1] as number) & PARKED) !== 0,
      releasedAt: view.getUint32(i + 2),
    });
  }
  return out;
}

/**
 * What a released address's record keeps until the address is reused or its cooldown and sticky time are over:
 * the last holder's assignment (host, container, endpoint, network) and when it was released.
 */
export const releasedSchema = assignmentSchema.extend({ releasedAt: z.string() });
export type ReleasedRecord = z.infer<typeof releasedSchema>;

/** How long a released address stays out of reuse (seconds; 0 = off). */
export interface CoolingPolicy {
  cooldownSec: number;
  stickySec: number;
}

export const NO_COOLING: CoolingPolicy = { cooldownSec: 0, stickySec: 0 };
