import { formatSubnet } from '../../net/address.js';
import { count } from '../../net/intervals.js';
import { isConflict } from '../core/conflicts.js';
import { CONFLICT_HOLDER } from '../model/records.js';
import { heldBack } from '../core/cooling-rules.js';
import { allocatable } from '../core/pool-rules.js';
import type { IpamStores } from '../ports.js';
import type { CoolingOptions } from './allocation-service.js';

/**
 * The cluster's address counts, for an operator's tool (the dashboard's Prometheus endpoint), never for a host:
 * every read here grows with the cluster. Counts come in two tiers: what count-only and small reads give (pool
 * configs, the number of addr records, the cooling entries, the host keys), and who holds what (conflicts and
 * each host's addresses: counted in the host index, or scanned while an upgrade fills it in), which callers
 * refresh less often.
 */

/** One pool's addresses by state. `records` = held + conflicts (addr keys, counted without reading them). */
export interface PoolCounts {
  pool: string;
  /** Allocatable addresses (ranges minus host ranges, reservations, network and broadcast). */
  size: number;
  records: number;
  /** Released and still kept from reuse by the cooldown. */
  cooling: number;
  /** Released by a named container and kept for that name. */
  parked: number;
}

/** What only a scan of every addr record tells. */
export interface HolderScan {
  /** Conflict records per pool (subnet). */
  conflicts: Map<string, number>;
  /** Container addresses per holding host id. */
  heldByHost: Map<string, number>;
}

/** The host keys as the registry lists them (`P/hosts/<id>` on a lease, `P/known-hosts/<id>` durable). */
export interface HostLister {
  list(): Promise<readonly { hostId: string; alive: boolean }[]>;
}

/** What observability/cluster-metrics.ts reads the cluster through. */
export interface ClusterSource {
  /** The cheap tier: pool configs, count-only reads, cooling keys. */
  pools(): Promise<PoolCounts[]>;
  /** The scan of every addr record (callers refresh it less often). */
  holders(): Promise<HolderScan>;
  /** Every host ever registered, with whether its lease is live. */
  hosts(): Promise<readonly { hostId: string; alive: boolean }[]>;
}

export class ClusterCensus implements ClusterSource {
  constructor(
    private readonly stores: IpamStores,
    private readonly registry: HostLister,
    private readonly cooling: CoolingOptions,
  ) {}

  /** Two range reads (live and known host keys), whatever the pools hold. */
  hosts(): Promise<readonly { hostId: string; alive: boolean }[]> {
    return this.registry.list();
  }

  /** Per pool: its config, one count-only read of its addr keys, and its cooling keys (one per block with any). */
  async pools(): Promise<PoolCounts[]> {
    const now = this.cooling.now();
    const out: PoolCounts[] = [];
    for (const p of await this.stores.pools.readAll()) {
      const [records, cooled] = await Promise.all([
        this.stores.addresses.count(p.subnet),
        this.stores.blocks.readCooling(p.subnet),
      ]);
      let cooling = 0;
      let parked = 0;
      for (const entries of cooled.values())
        for (const e of entries.values()) {
          if (!heldBack(e, now, this.cooling.policy)) continue;
          if (e.parked) parked++;
          else cooling++;
        }
      out.push({
        pool: formatSubnet(p.subnet),
        size: Number(count(allocatable(p.config, p.subnet))),
        records,
        cooling,
        parked,
      });
    }
    return out;
  }

  holders(): Promise<HolderScan> {
    return countHolders(this.stores, this.registry);
  }
}

/**
 * Conflicts per pool and addresses per registered host: count-only reads of the host index (one per host and one per
 * pool), or, while an upgrade still fills the index in, a paged read of every addr record (which also finds holders
 * that never registered).
 */
export async function countHolders(stores: IpamStores, registry: HostLister): Promise<HolderScan> {
  if (!(await stores.hostIndex.complete())) return scanHolders(stores);
  const [subnets, hosts] = await Promise.all([stores.pools.listSubnets(), registry.list()]);
  const conflicts = new Map<string, number>();
  for (const subnet of subnets)
    conflicts.set(formatSubnet(subnet), await stores.hostIndex.count(CONFLICT_HOLDER, subnet));
  const heldByHost = new Map<string, number>();
  for (const { hostId } of hosts) heldByHost.set(hostId, await stores.hostIndex.count(hostId));
  return { conflicts, heldByHost };
}

async function scanHolders(stores: IpamStores): Promise<HolderScan> {
  const conflicts = new Map<string, number>();
  const heldByHost = new Map<string, number>();
  for (const subnet of await stores.pools.listSubnets()) {
    const pool = formatSubnet(subnet);
    conflicts.set(pool, 0);
    for (const { read } of await stores.addresses.list(subnet)) {
      if (read === 'unreadable') continue;
      if (isConflict(read)) conflicts.set(pool, (conflicts.get(pool) ?? 0) + 1);
      else heldByHost.set(read.assignment.hostId, (heldByHost.get(read.assignment.hostId) ?? 0) + 1);
    }
  }
  return { conflicts, heldByHost };
}
