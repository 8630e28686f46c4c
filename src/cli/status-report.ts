import type { PoolSummary } from '../ipam/contract.js';
import type { HolderScan } from '../ipam/services/cluster-census.js';
import type { HostInfo } from '../store/host-registry.js';
import { formatTable } from './output.js';

export interface HostStatus {
  hostId: string;
  hostname?: string;
  version?: string;
  /** 'up' = its server holds a live lease; 'down' = registered before, lease gone; 'unknown' = never registered. */
  state: 'up' | 'down' | 'unknown';
  lastSeen?: string;
  addresses: number;
}

/** A pool with its conflicts counted apart: `used` is what containers hold, `conflicts` what outside machines use. */
export type PoolStatus = PoolSummary & { conflicts: number };

export interface StatusReport {
  pools: PoolStatus[];
  hosts: HostStatus[];
}

/**
 * Joins pools, registry and who holds what (counted: see countHolders). Liveness is reported only: nothing is freed
 * for a down host.
 */
export function buildStatus(pools: PoolSummary[], hosts: HostInfo[], holders: HolderScan): StatusReport {
  // A conflict record takes an address like a container does (the pool's count includes it): shown apart.
  const withConflicts = pools.map((p) => {
    const n = holders.conflicts.get(p.subnet) ?? 0;
    return { ...p, used: Math.max(0, p.used - n), conflicts: n };
  });
  const out: HostStatus[] = hosts.map((h) => ({
    hostId: h.hostId,
    hostname: h.hostname,
    version: h.version,
    state: h.alive ? 'up' : 'down',
    lastSeen: h.lastSeen,
    addresses: holders.heldByHost.get(h.hostId) ?? 0,
  }));
  const registered = new Set(hosts.map((h) => h.hostId));
  for (const [hostId, count] of [...holders.heldByHost].sort(([a], [b]) => a.localeCompare(b))) {
    if (!registered.has(hostId) && count > 0) out.push({ hostId, state: 'unknown', addresses: count });
  }
  return { pools: withConflicts, hosts: out };
}

export function formatStatus(report: StatusReport): string {
  const pools = report.pools.length
    ? formatTable(
        ['POOL', 'GATEWAY', 'SIZE', 'USED', 'CONFLICTS', 'FREE', 'RANGES', 'HOST RANGES'],
        report.pools.map((p) => [
          p.subnet,
          p.gateway ?? '',
          p.size,
          String(p.used),
          String(p.conflicts),
          p.free,
          p.ranges.map((r) => `${r.start}-${r.end}`).join(','),
          p.hostRanges.map((r) => `${r.start}-${r.end}`).join(','),
        ]),
      )
    : 'no pools yet: add one with `flatnet ip-range add --ip-start A/len --ip-end B/len`';
  const hosts = report.hosts.length
    ? formatTable(
        ['HOST', 'HOSTNAME', 'STATE', 'LAST SEEN', 'ADDRESSES', 'VERSION'],
        report.hosts.map((h) => [
          h.hostId,
          h.hostname ?? '',
          h.state,
          h.lastSeen ?? '',
          String(h.addresses),
          h.version ?? '',
        ]),
      )
    : 'no hosts have registered yet (a host registers when `flatnet server` starts)';
  return [pools, hosts, ...claimsAndHolds(report.pools)].join('\n\n');
}

/**
 * Who holds each pool (one claim entry per network) and its gateway/aux addresses: a claim or hold of a host
 * that is gone shows here until `flatnet host forget` drops it.
 */
function claimsAndHolds(pools: PoolSummary[]): string[] {
  const claims = new Map<string, { subnet: string; hostId: string; poolId: string; networks: number; since: string }>();
  for (const p of pools) {
    for (const c of p.claims) {
      const key = `${p.subnet}|${c.hostId}|${c.poolId}`;
      const seen = claims.get(key);
      if (seen) seen.networks++;
      else claims.set(key, { subnet: p.subnet, hostId: c.hostId, poolId: c.poolId, networks: 1, since: c.since });
    }
  }
  const holds = pools.flatMap((p) => p.reservations.map((r) => [r.address, r.kind, p.subnet, r.hostIds.join(',')]));
  const out: string[] = [];
  if (claims.size > 0) {
    out.push(
      formatTable(
        ['CLAIM POOL', 'HOST', 'POOL ID', 'NETWORKS', 'SINCE'],
        [...claims.values()].map((c) => [c.subnet, c.hostId, c.poolId, String(c.networks), c.since]),
      ),
    );
  }
  if (holds.length > 0) out.push(formatTable(['HELD ADDRESS', 'KIND', 'POOL', 'HOSTS'], holds));
  return out;
}
