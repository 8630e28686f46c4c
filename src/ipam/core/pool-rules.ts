import { FlatnetError, poolsOverlap } from '../../errors.js';
import { addressAt, formatSubnet, offsetIn, parseSubnet, type Subnet, subnetsOverlap } from '../../net/address.js';
import { type Interval, intersect, overlaps, subtract, union } from '../../net/intervals.js';
import type { PoolConfig } from '../model/records.js';
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
  return union([], c.ranges.map((r) => interval(subnet, r.start, r.end)));
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

/** Records host H's claim on the pool, registering Docker's sub-pool as a range when it is new. */
export function claimPool(c: PoolConfig, ref: PoolRef, hostId: string, poolId: string, now: string): PoolConfig {
  const subnetText = formatSubnet(ref.subnet);
  const held = c.claims.find((k) => k.hostId === hostId);
  if (held) {
    throw new FlatnetError('conflict', `Host ${hostId} already has a network on ${subnetText} (pool ${held.poolId}); networks on one host must not overlap.`);
  }
  const next: PoolConfig = { ...c, ranges: [...c.ranges], claims: [...c.claims] };
  if (ref.subPool) {
    // An --ip-range that meets the operator's ranges only narrows them (allowedFor intersects): the operator's
    // word on which LAN addresses are free wins. One that meets none becomes a range of its own.
    const sub = subnetInterval(ref.subnet, ref.subPool);
    const meetsExisting = c.ranges.some((r) => overlaps(interval(ref.subnet, r.start, r.end), sub));
    if (!meetsExisting) {
      next.ranges.push({ start: addressAt(ref.subnet, sub.start), end: addressAt(ref.subnet, sub.end), origin: 'docker', createdAt: now });
    }
  } else if (c.ranges.length === 0) {
    throw new FlatnetError('invalid', `${subnetText} has no ip-range: on a flat LAN the subnet's addresses belong to real machines; add one with \`flatnet ip-range add\` or pass --ip-range.`);
  }
  next.claims.push({ hostId, poolId, subPool: ref.subPool ? formatSubnet(ref.subPool) : '', since: now });
  return next;
}

/**
 * Removes host H's claim (idempotent). Returns the Docker-origin ranges no remaining claim uses: the caller drops
 * those in which nothing is assigned. A host without claims also gives up its gateway/aux references.
 */
export function releaseClaim(c: PoolConfig, hostId: string, poolId: string): { config: PoolConfig; droppable: Interval[] } {
  const claims = c.claims.filter((k) => !(k.hostId === hostId && k.poolId === poolId));
  const stillHolds = claims.some((k) => k.hostId === hostId);
  const reservations = stillHolds
    ? c.reservations
    : c.reservations
        .map((r) => ({ ...r, holders: Object.fromEntries(Object.entries(r.holders).filter(([h]) => h !== hostId)) }))
        .filter((r) => Object.keys(r.holders).length > 0);
  const config = { ...c, claims, reservations };
  const subnet = parseSubnet(c.subnet);
  const used = claims.filter((k) => k.subPool !== '').map((k) => subnetInterval(subnet, parseSubnet(k.subPool)));
  const droppable = c.ranges
    .filter((r) => r.origin === 'docker')
    .map((r) => interval(subnet, r.start, r.end))
    .filter((r) => !used.some((u) => overlaps(u, r)));
  return { config, droppable };
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
