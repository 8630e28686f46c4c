import { type Assignment, type AssignmentRead, CONFLICT_HOLDER, type ConflictSeen } from '../model/records.js';

/**
 * Conflict detection (RFC 5227 style), the pure part. An address of a range that a machine outside flatnet
 * answers ARP for is stored as a conflict record: an assignment held by CONFLICT_HOLDER, so every allocator skips
 * it like any held address, and every path that frees a host's addresses (reconcile, journal replay, host forget,
 * owner updates, Docker's release) leaves it alone because no host holds it. Only `ip clear-conflict` frees it.
 */

/** The record stored for an address a machine outside flatnet answered for. */
export function conflictRecord(poolId: string, seen: ConflictSeen): Assignment {
  const conflict: ConflictSeen = { seenAt: seen.seenAt, seenBy: seen.seenBy };
  if (seen.mac !== undefined && seen.mac !== '') conflict.mac = seen.mac;
  return { hostId: CONFLICT_HOLDER, since: seen.seenAt, poolId, conflict };
}

/** True when an address key holds a conflict record (not a container's assignment). */
export function isConflict(
  read: AssignmentRead | undefined,
): read is { assignment: Assignment & { conflict: ConflictSeen } } {
  return (
    read !== undefined &&
    read !== 'unreadable' &&
    read.assignment.hostId === CONFLICT_HOLDER &&
    read.assignment.conflict !== undefined
  );
}

/** What the prober knows of one pre-probed candidate. */
export type CandidateState = { state: 'probing' } | { state: 'free'; probedAt: number };

/** A candidate probed free longer ago than staleMs is probed again (a machine may have come up since). */
export function isStale(probedAt: number, now: number, staleMs: number): boolean {
  return now - probedAt >= staleMs;
}

export interface ProbePlan {
  /** Addresses to probe now, in the order the allocator will hand them out. */
  probe: string[];
  /** What stays known: candidates still upcoming (the rest were handed out or recorded meanwhile). */
  keep: Map<string, CandidateState>;
}

/**
 * Keeps the pre-probed set on the addresses the allocator hands out next: every upcoming address not being probed
 * and not freshly probed free is probed; what is no longer upcoming is forgotten.
 */
export function planProbes(
  upcoming: readonly string[],
  known: ReadonlyMap<string, CandidateState>,
  now: number,
  staleMs: number,
): ProbePlan {
  const keep = new Map<string, CandidateState>();
  const probe: string[] = [];
  for (const address of new Set(upcoming)) {
    const k = known.get(address);
    if (k !== undefined) keep.set(address, k);
    if (k === undefined || (k.state === 'free' && isStale(k.probedAt, now, staleMs))) probe.push(address);
  }
  return { probe, keep };
}

/** How many upcoming addresses are pre-probed (probed free, not stale): what the next allocations can rely on. */
export function preProbed(
  upcoming: readonly string[],
  known: ReadonlyMap<string, CandidateState>,
  now: number,
  staleMs: number,
): number {
  return upcoming.filter((a) => {
    const k = known.get(a);
    return k?.state === 'free' && !isStale(k.probedAt, now, staleMs);
  }).length;
}
