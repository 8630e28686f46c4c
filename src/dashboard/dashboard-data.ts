import { FlatnetError } from '../errors.js';
import { countHolders } from '../ipam/services/cluster-census.js';
import { buildStatus, type HostStatus, type PoolStatus } from '../cli/status-report.js';
import type { AssignmentInfo, IpamAdmin } from '../ipam/contract.js';
import { heldBack } from '../ipam/core/cooling-rules.js';
import type { CoolingPolicy, ReleasedRecord } from '../ipam/model/cooling-record.js';
import type { AssignmentRead } from '../ipam/model/records.js';
import type { IpamStores } from '../ipam/ports.js';
import { addressAt, formatSubnet, type Subnet, subnetContains, tryParseAddress } from '../net/address.js';
import type { Interval } from '../net/intervals.js';
import type { HostInfo } from '../store/host-registry.js';
import {
  type BlockTally,
  blockCells,
  blockTally,
  type Cell,
  mapBlocks,
  mapPage,
  positionOf,
  recordsNeeded,
} from './block-cells.js';

/** Where the dashboard reads from: the operator's IPAM services, the block repository, the host registry. */
export interface DashboardSources {
  admin: IpamAdmin;
  stores: IpamStores;
  hosts: { list(): Promise<HostInfo[]> };
  policy: CoolingPolicy;
  /** Seconds since the epoch. */
  now?: () => number;
}

export interface PoolView extends PoolStatus {
  cooling: number;
  parked: number;
  /** Blocks the pool's map lists (decimal string: a /8 lists 65,536, an IPv6 pool far more). */
  blocks: string;
}

export interface HostView extends HostStatus {
  /** The host's claims: networks per pool. */
  claims: { pool: string; poolId: string; networks: number }[];
}

export interface Overview {
  pools: PoolView[];
  hosts: HostView[];
  /** When it was read (ISO). */
  readAt: string;
}

export interface BlockView {
  pool: string;
  block: string;
  /** Position of the block in the pool's block list, when listed. */
  position?: string;
  cells: Cell[];
}

export interface BlockPage {
  pool: string;
  total: string;
  from: string;
  blocks: BlockTally[];
}

export interface SearchHit {
  pool: string;
  address: string;
  block: string;
  position?: string;
  hostId?: string;
  containerName?: string;
  containerId?: string;
  endpointName?: string;
}

/** An overview read is served again for this long unless etcd changed meanwhile. */
const OVERVIEW_TTL_MS = 2000;
/** Overview reads (count-only reads, the pool configs and their cooling keys) begin at most this often. */
const OVERVIEW_MIN_INTERVAL_MS = 1000;
const MAX_SEARCH_HITS = 20;

/**
 * The dashboard's reads. The overview (pools, hosts, the names search looks in) is read through the same services
 * as `flatnet status` and shared for a moment; the map reads one block (and its records) at a time, so a /8 pool
 * costs what the open block holds.
 */
export class DashboardData {
  /** The latest overview read; `at` = when it begins (it may be waiting for OVERVIEW_MIN_INTERVAL_MS). */
  private overviewRead: { at: number; value: Promise<Overview>; stale: boolean } | undefined;
  private readonly now: () => number;

  constructor(private readonly src: DashboardSources) {
    this.now = src.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /** Something changed in etcd: a read that began before it is not served again. */
  invalidate(): void {
    const r = this.overviewRead;
    if (r && Date.now() >= r.at) r.stale = true;
  }

  /**
   * The shared overview: a fresh one is read at most every OVERVIEW_MIN_INTERVAL_MS however many pages ask and
   * however often etcd changes (a request meanwhile waits for the next read).
   */
  overview(): Promise<Overview> {
    const cached = this.overviewRead;
    const now = Date.now();
    if (cached && (now < cached.at || (!cached.stale && now - cached.at < OVERVIEW_TTL_MS))) return cached.value;
    const wait = cached ? Math.max(0, cached.at + OVERVIEW_MIN_INTERVAL_MS - now) : 0;
    const value = new Promise<void>((r) => setTimeout(r, wait)).then(() => this.readOverview());
    const entry = { at: now + wait, value, stale: false };
    this.overviewRead = entry;
    // A failed read is not kept: the next request tries again.
    value.catch(() => {
      if (this.overviewRead === entry) this.overviewRead = undefined;
    });
    return value;
  }

  private async readOverview(): Promise<Overview> {
    const { admin, stores } = this.src;
    const [summaries, hosts, subnets] = await Promise.all([
      admin.poolSummaries(),
      this.src.hosts.list(),
      stores.pools.listSubnets(),
    ]);
    const status = buildStatus(summaries, hosts, await countHolders(stores, { list: async () => hosts }));
    const now = this.now();
    const pools = await Promise.all(
      status.pools.map(async (p) => {
        const subnet = subnets.find((s) => formatSubnet(s) === p.subnet);
        let cooling = 0;
        let parked = 0;
        if (subnet) {
          for (const entries of (await stores.blocks.readCooling(subnet)).values()) {
            for (const e of entries.values()) {
              if (!heldBack(e, now, this.src.policy)) continue;
              if (e.parked) parked++;
              else cooling++;
            }
          }
        }
        const listed = subnet ? await this.listedBlocks(subnet) : [];
        return { ...p, cooling, parked, blocks: listed.reduce((n, b) => n + (b.end - b.start + 1n), 0n).toString() };
      }),
    );
    const claims = new Map<string, Map<string, { pool: string; poolId: string; networks: number }>>();
    for (const p of summaries) {
      for (const c of p.claims) {
        const mine = claims.get(c.hostId) ?? new Map<string, { pool: string; poolId: string; networks: number }>();
        claims.set(c.hostId, mine);
        const entry = mine.get(c.poolId) ?? { pool: p.subnet, poolId: c.poolId, networks: 0 };
        entry.networks++;
        mine.set(c.poolId, entry);
      }
    }
    return {
      pools,
      hosts: status.hosts.map((h) => ({ ...h, claims: [...(claims.get(h.hostId)?.values() ?? [])] })),
      readAt: new Date().toISOString(),
    };
  }

  private async poolConfig(subnet: Subnet) {
    const rec = await this.src.stores.pools.read(subnet);
    if (!rec) throw new FlatnetError('not-found', `no pool ${formatSubnet(subnet)}`);
    return rec.config;
  }

  private async listedBlocks(subnet: Subnet) {
    return mapBlocks(await this.poolConfig(subnet), subnet);
  }

  /** A page of the pool's block list with what each block holds: one block read per listed block. */
  async blockPage(subnet: Subnet, from: bigint, n: number): Promise<BlockPage> {
    const config = await this.poolConfig(subnet);
    const page = mapPage(mapBlocks(config, subnet), from, n);
    const now = this.now();
    const blocks = await Promise.all(
      page.blocks.map(async (b) => {
        const view = await this.src.stores.blocks.read(subnet, b);
        if (!view) throw new FlatnetError('not-found', `no pool ${formatSubnet(subnet)}`);
        return blockTally(subnet, view.config, b, view.bits, view.cooling, this.src.policy, now);
      }),
    );
    return { pool: formatSubnet(subnet), total: page.total.toString(), from: from.toString(), blocks };
  }

  /** The 256 cells of one block, with the records of its taken and cooling addresses. */
  async block(subnet: Subnet, block: bigint): Promise<BlockView> {
    const { blocks } = this.src.stores;
    const view = await blocks.read(subnet, block);
    if (!view) throw new FlatnetError('not-found', `no pool ${formatSubnet(subnet)}`);
    const wanted = recordsNeeded(subnet, block, view.bits, view.cooling);
    const assignments = new Map<string, AssignmentRead>();
    const released = new Map<string, ReleasedRecord>();
    // One read: the store splits it within etcd's txn limits.
    const part = await blocks.read(subnet, block, wanted);
    for (const [a, r] of part?.assignments ?? []) assignments.set(a, r);
    for (const [a, r] of part?.released ?? []) released.set(a, r);
    const cells = blockCells({ ...view, assignments, released, policy: this.src.policy, now: this.now() });
    const position = positionOf(mapBlocks(view.config, subnet), block);
    return {
      pool: formatSubnet(subnet),
      block: block.toString(16),
      ...(position !== undefined ? { position: position.toString() } : {}),
      cells,
    };
  }

  /**
   * An address finds its pool and block (no read of the pool); anything else is a container name, endpoint name
   * or container id prefix, looked up in the assignment records.
   */
  async search(q: string): Promise<SearchHit[]> {
    const subnets = await this.src.stores.pools.listSubnets();
    const listed = new Map<string, Promise<Interval[]>>();
    // Where an address sits: its pool, block, and the block's place in the pool's list (each pool read once).
    const locate = async (subnet: Subnet, value: bigint): Promise<SearchHit> => {
      const pool = formatSubnet(subnet);
      const offset = value - subnet.network;
      const block = offset >> 8n;
      if (!listed.has(pool)) listed.set(pool, this.listedBlocks(subnet));
      const position = positionOf(await (listed.get(pool) as Promise<Interval[]>), block);
      return {
        pool,
        address: addressAt(subnet, offset),
        block: block.toString(16),
        ...(position !== undefined ? { position: position.toString() } : {}),
      };
    };
    const a = tryParseAddress(q);
    if (a) {
      const subnet = subnets.find((s) => subnetContains(s, a.family, a.value));
      return subnet ? [await locate(subnet, a.value)] : [];
    }
    // A name has no index: this reads every assignment record, once per search (README, Limits).
    const assignments = await this.src.admin.listAssignments();
    const needle = q.toLowerCase();
    const exact: AssignmentInfo[] = [];
    const partial: AssignmentInfo[] = [];
    for (const x of assignments) {
      const names = [x.containerName, x.endpointName].flatMap((n) => (n ? [n.toLowerCase().replace(/^\//, '')] : []));
      if (names.includes(needle)) exact.push(x);
      else if (names.some((n) => n.includes(needle)) || (needle.length >= 4 && x.containerId?.startsWith(needle)))
        partial.push(x);
    }
    const out: SearchHit[] = [];
    for (const x of [...exact, ...partial].slice(0, MAX_SEARCH_HITS)) {
      const subnet = subnets.find((s) => formatSubnet(s) === x.subnet);
      const parsed = tryParseAddress(x.address);
      if (!subnet || !parsed) continue;
      out.push({
        ...(await locate(subnet, parsed.value)),
        hostId: x.hostId,
        ...(x.containerName ? { containerName: x.containerName } : {}),
        ...(x.containerId ? { containerId: x.containerId } : {}),
        ...(x.endpointName ? { endpointName: x.endpointName } : {}),
      });
    }
    return out;
  }
}
