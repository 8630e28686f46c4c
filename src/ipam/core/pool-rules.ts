import { FlatnetError, poolsOverlap } from '../../errors.js';
import { addressAt, formatSubnet, offsetIn, parseSubnet, type Subnet, subnetsOverlap } from '../../net/address.js';
import { type Interval, intersect, overlaps, subtract, union } from '../../net/intervals.js';
import type { ClaimRecord, PoolConfig } from '../model/records.js';
import type { PoolRef } from './pool-id.js';

/** The rules of one pool as plain functions over its config: which offsets may go to containers, claims, reservations. */

export function interval(subnet: Subnet, start: string, end: string): Interval {
  return { start: offsetIn(subnet, start), end: offsetIn(subnet, end) };
}

export function subnetInterval(subnet: Subnet, inner: Subnet): Interval {
  const start = inner.network - subnet.network;
  return { start, end: start + inner.size - 1n };
}

export function rangeSet(c: PoolConfig, subnet: Subnet): Interval[] {
  return union(
    [],
    c.ranges.map((r) => interval(subnet, r.start, r.end)),
  );
}

/** Offsets never given to containers: host ranges, gateway, reservations, and v4 network/broadcast. */
export function exclusions(c: PoolConfig, subnet: Subnet): Interval[] {
  const out = c.hostRanges.map((r) => interval(subnet, r.start, r.end));
  for (const a of [...(c.gateway ? [c.gateway] : []), ...c.reservations.map((r) => r.address)]) {
    const o = offsetIn(subnet, a);
    out.push({ start: o, end: o });
  }
  if (subnet.family === 4 && subnet.hostBits >= 2) {
    out.push({ start: 0n, end: 0n }, { start: subnet.size - 1n, end: subnet.size - 1n });
  }
  return union([], out);
}

export function allocatable(c: PoolConfig, subnet: Subnet): Interval[] {
  return subtract(rangeSet(c, subnet), exclusions(c, subnet));
}

/** What one PoolID may hand out: with a sub-pool (--ip-range) only inside it. `all` = allocatable(c, ref.subnet). */
export function allowedFor(c: PoolConfig, ref: PoolRef, all: Interval[] = allocatable(c, ref.subnet)): Interval[] {
  return ref.subPool ? intersect(all, [subnetInterval(ref.subnet, ref.subPool)]) : all;
}

/*
 * A claim is counted per network: each RequestPool of one PoolID by one host adds one claim entry, each
 * ReleasePool removes one, and the host's hold on the pool ends with its last entry. Repeating a RequestPool
 * (Docker re-creating a network, an etcd client re-sending a committed call, a stale entry whose ReleasePool was
 * lost) therefore never fails; at worst it keeps the pool one entry longer, which `flatnet host forget` or the
 * journal's replay of the lost release clears.
 */

/** How many networks of host H hold the PoolID (claim entries). */
export function claimCount(c: PoolConfig, hostId: string, poolId: string): number {
  return c.claims.filter((k) => k.hostId === hostId && k.poolId === poolId).length;
}

/** Records host H's claim on the pool, registering Docker's sub-pool as a range when it is new. */
export function claimPool(c: PoolConfig, ref: PoolRef, hostId: string, poolId: string, now: string): PoolConfig {
  const subnetText = formatSubnet(ref.subnet);
  const other = c.claims.find((k) => k.hostId === hostId && k.poolId !== poolId);
  if (other) {
    throw new FlatnetError(
      'conflict',
      `Host ${hostId} already has a network on ${subnetText} (pool ${other.poolId}); networks on one host must not overlap.`,
    );
  }
  const next: PoolConfig = { ...c, ranges: [...c.ranges], claims: [...c.claims] };
  if (claimCount(c, hostId, poolId) > 0) {
    // Same pool again: one more network on it (its range, if any, is registered already).
    next.claims.push({ hostId, poolId, subPool: ref.subPool ? formatSubnet(ref.subPool) : '', since: now });
    return next;
  }
  if (ref.subPool) {
    // An --ip-range that meets the operator's ranges only narrows them (allowedFor intersects): the operator's
    // word on which LAN addresses are free wins. One that meets none becomes a range of its own.
    const sub = subnetInterval(ref.subnet, ref.subPool);
    const meetsExisting = c.ranges.some((r) => overlaps(interval(ref.subnet, r.start, r.end), sub));
    if (!meetsExisting) {
      next.ranges.push({
        start: addressAt(ref.subnet, sub.start),
        end: addressAt(ref.subnet, sub.end),
        origin: 'docker',
        createdAt: now,
      });
    }
  } else if (c.ranges.length === 0) {
    throw new FlatnetError(
      'invalid',
      `${subnetText} has no ip-range: on a flat LAN the subnet's addresses belong to real machines; add one with \`flatnet ip-range add\` or pass --ip-range.`,
    );
  }
  next.claims.push({ hostId, poolId, subPool: ref.subPool ? formatSubnet(ref.subPool) : '', since: now });
  return next;
}

/** The Docker-origin ranges that no claim of `claims` uses (the caller drops those in which nothing is assigned). */
function unusedDockerRanges(c: PoolConfig, claims: PoolConfig['claims']): Interval[] {
  const subnet = parseSubnet(c.subnet);
  const used = claims.filter((k) => k.subPool !== '').map((k) => subnetInterval(subnet, parseSubnet(k.subPool)));
  return c.ranges
    .filter((r) => r.origin === 'docker')
    .map((r) => interval(subnet, r.start, r.end))
    .filter((r) => !used.some((u) => overlaps(u, r)));
}

/** Which claim a release may drop: made by `notAfter` (ISO time), or exactly the one made at `exactly`. */
export interface ClaimChoice {
  notAfter?: string | undefined;
  exactly?: string | undefined;
}

/**
 * Removes one of the host's claim entries on the PoolID: the newest (the oldest "since" keeps saying how long the
 * host has held the pool) of those `which` allows, and says which (`released`, undefined when none). A replayed
 * release must not take the claim of a network created after it was asked for (`notAfter`), nor a second one
 * after its first write applied unanswered (`exactly`). Returns the Docker-origin ranges no remaining claim uses;
 * a host left without claims also gives up its gateway/aux references.
 */
export function releaseClaim(
  c: PoolConfig,
  hostId: string,
  poolId: string,
  which: ClaimChoice = {},
): { config: PoolConfig; droppable: Interval[]; released: ClaimRecord | undefined } {
  let at = -1;
  c.claims.forEach((k, i) => {
    if (k.hostId !== hostId || k.poolId !== poolId) return;
    if (
      which.exactly !== undefined
        ? k.since === which.exactly
        : which.notAfter === undefined || k.since <= which.notAfter
    )
      at = i;
  });
  const claims = at < 0 ? c.claims : c.claims.filter((_, i) => i !== at);
  const stillHolds = claims.some((k) => k.hostId === hostId);
  const reservations = stillHolds ? c.reservations : withoutHolder(c.reservations, hostId);
  return { config: { ...c, claims, reservations }, droppable: unusedDockerRanges(c, claims), released: c.claims[at] };
}

function withoutHolder(reservations: PoolConfig['reservations'], hostId: string): PoolConfig['reservations'] {
  return reservations
    .map((r) => ({ ...r, holders: Object.fromEntries(Object.entries(r.holders).filter(([h]) => h !== hostId)) }))
    .filter((r) => Object.keys(r.holders).length > 0);
}

/**
 * What nobody uses any more, seen by a read of every host's claims and holds: reservations no host holds go, and
 * the Docker ranges no claim uses are returned (the caller drops those in which nothing is assigned). A host's own
 * release cannot decide this (it does not read the other hosts), so it runs after the release that may have made
 * something unused.
 */
export function withoutUnused(c: PoolConfig): { config: PoolConfig; droppable: Interval[] } {
  return {
    config: { ...c, reservations: c.reservations.filter((r) => Object.keys(r.holders).length > 0) },
    droppable: unusedDockerRanges(c, c.claims),
  };
}

/** What a retired host holds in one pool's config. */
export interface HostHolds {
  claims: number;
  /** Gateway/aux addresses it holds, with its reference count on each. */
  reservations: { address: string; kind: 'gateway' | 'aux'; count: number }[];
}

export function hostHolds(c: PoolConfig, hostId: string): HostHolds {
  return {
    claims: c.claims.filter((k) => k.hostId === hostId).length,
    reservations: c.reservations
      .filter((r) => r.holders[hostId] !== undefined)
      .map((r) => ({ address: r.address, kind: r.kind, count: r.holders[hostId] ?? 0 })),
  };
}

/** Drops every claim entry and reservation reference of host H (`flatnet host forget`). */
export function forgetHostInPool(c: PoolConfig, hostId: string): { config: PoolConfig; droppable: Interval[] } {
  const claims = c.claims.filter((k) => k.hostId !== hostId);
  return {
    config: { ...c, claims, reservations: withoutHolder(c.reservations, hostId) },
    droppable: unusedDockerRanges(c, claims),
  };
}

export function dropRanges(c: PoolConfig, subnet: Subnet, drop: Interval[]): PoolConfig {
  const gone = (r: { start: string; end: string }): boolean =>
    drop.some((d) => d.start === offsetIn(subnet, r.start) && d.end === offsetIn(subnet, r.end));
  return { ...c, ranges: c.ranges.filter((r) => !(r.origin === 'docker' && gone(r))) };
}

/** Reply Data for RequestPool: a configured gateway makes Docker use it instead of asking for one. */
export function poolData(c: PoolConfig, subnet: Subnet): Record<string, string> {
  return c.gateway ? { 'com.docker.network.gateway': `${c.gateway}/${subnet.prefix}` } : {};
}

/** A pool nobody needs any more: its keys can go. */
export function poolIsUnused(c: PoolConfig): boolean {
  return (
    c.ranges.length === 0 &&
    c.hostRanges.length === 0 &&
    c.reservations.length === 0 &&
    c.claims.length === 0 &&
    c.gateway === undefined
  );
}

/** A new pool must not overlap any other pool: a LAN address belongs to one pool. */
export function assertNoOverlap(index: readonly Subnet[], subnet: Subnet): void {
  const clash = index.find((s) => formatSubnet(s) !== formatSubnet(subnet) && subnetsOverlap(s, subnet));
  if (clash) throw poolsOverlap(formatSubnet(subnet), formatSubnet(clash));
}
