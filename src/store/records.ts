import { z } from 'zod';
import { FlatnetError } from '../errors.js';
import { type ReleasedRecord, releasedSchema } from '../ipam/model/cooling-record.js';
import {
  type AssignmentRead,
  assignmentSchema,
  type ClaimRecord,
  claimRecord,
  type PoolConfig,
  poolConfigSchema,
} from '../ipam/model/records.js';

/** Decoding what etcd holds into the IPAM's records (zod at the edge: nothing unparsed passes the store). */

export const poolIndexSchema = z.object({ subnets: z.array(z.string()) });

export function safeJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString());
  } catch {
    return undefined;
  }
}

export function decodeConfig(raw: Buffer, key: string): PoolConfig {
  const parsed = poolConfigSchema.safeParse(safeJson(raw));
  if (!parsed.success)
    throw new FlatnetError('internal', `The pool config at ${key} in etcd is malformed: ${parsed.error.message}`);
  return parsed.data;
}

/** One host's claim key; only entries of that host count (a malformed key is refused like a malformed config). */
export function decodeClaims(raw: Buffer, key: string, hostId: string): ClaimRecord[] {
  const parsed = z.array(claimRecord).safeParse(safeJson(raw));
  if (!parsed.success)
    throw new FlatnetError('internal', `The pool claims at ${key} in etcd are malformed: ${parsed.error.message}`);
  return parsed.data.filter((c) => c.hostId === hostId);
}

export function decodeAssignment(raw: Buffer): AssignmentRead {
  const parsed = assignmentSchema.safeParse(safeJson(raw));
  return parsed.success ? { assignment: parsed.data } : 'unreadable';
}

/** A released record, or undefined when malformed (it only delays a reuse; a broken one is ignored). */
export function decodeReleased(raw: Buffer): ReleasedRecord | undefined {
  const parsed = releasedSchema.safeParse(safeJson(raw));
  return parsed.success ? parsed.data : undefined;
}

export const nameIndexSchema = z.object({ address: z.string() });

export function decodeNameIndex(raw: Buffer): string | undefined {
  const parsed = nameIndexSchema.safeParse(safeJson(raw));
  return parsed.success ? parsed.data.address : undefined;
}

/** A host index entry (keys.ts: host/<hostId>/addr/<S>/<ip>): what the reconcile needs without the record. */
export const indexEntrySchema = z.object({ since: z.string(), poolId: z.string() });

export function encodeIndexEntry(a: { since: string; poolId: string }): string {
  return JSON.stringify({ since: a.since, poolId: a.poolId });
}

/** undefined when malformed: an entry is a hint, and a broken one is treated like a missing one. */
export function decodeIndexEntry(raw: Buffer): { since: string; poolId: string } | undefined {
  const parsed = indexEntrySchema.safeParse(safeJson(raw));
  return parsed.success ? parsed.data : undefined;
}

export const holdSchema = z.object({ refs: z.number().int().nonnegative() });

/** One host's hold key: its reference count (a malformed one counts as one reference, so it is never lost). */
export function decodeHold(raw: Buffer): number {
  const parsed = holdSchema.safeParse(safeJson(raw));
  return parsed.success ? parsed.data.refs : 1;
}
