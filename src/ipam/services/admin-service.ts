import { FlatnetError, noSuchPool } from '../../errors.js';
import { formatSubnet, parseSubnet, type Subnet, subnetContains } from '../../net/address.js';
import { count, type Interval } from '../../net/intervals.js';
import type { Logger } from '../../observability/logger.js';
import { anyAssigned } from '../core/block-ops.js';
import { allocatable, interval, poolIsUnused } from '../core/pool-rules.js';
import { addHostRange, addRange, removeHostRange, removeRange } from '../core/range-rules.js';
import { parseRangeSpec } from '../core/range-spec.js';
import type {
  AssignmentInfo,
  ConflictInfo,
  HostRangeInfo,
  HostRangeSpec,
  IpamAdmin,
  IpRangeInfo,
  IpRangeSpec,
  PoolSummary,
  ReleasedInfo,
} from '../contract.js';
import { type AssignmentRead, emptyPoolConfig } from '../model/records.js';
import type { IpamStores, PoolRecord, PoolTxn } from '../ports.js';
import { isConflict } from '../core/conflicts.js';
import { AddressService } from './address-service.js';
import { ConflictService } from './conflict-service.js';
import { heldBy, recordsOf } from './held-addresses.js';
import { readAssignment } from './host-forget.js';
import { updatePool } from './pool-update.js';
import type { CoolingOptions } from './allocation-service.js';

/** The admin's host id in the address service: it only ever releases, always with force. */
const ADMIN_HOST = 'admin';

/** The operator's IPAM (CLI and metrics); every change is one read-decide-write on the pool. */
export class IpamAdminService implements IpamAdmin {
  private readonly addressService: AddressService;
  private readonly conflicts: ConflictService;

  constructor(
    private readonly stores: IpamStores,
    logger: Logger,
    cooling?: CoolingOptions,
  ) {
    this.addressService = new AddressService(stores, ADMIN_HOST, logger, cooling);
    this.conflicts = new ConflictService(stores);
  }

  /** The subnet a range names by its /prefix, or the existing pool holding it. */
  private async locate(spec: IpRangeSpec): Promise<{ subnet: Subnet; range: Interval }> {
    const p = parseRangeSpec(spec.start, spec.end);
    const subnet =
      p.subnet ?? (await this.stores.pools.listSubnets()).find((s) => subnetContains(s, p.family, p.start));
    if (!subnet)
      throw new FlatnetError(
        'invalid',
        `No pool holds ${spec.start}; give the prefix length (e.g. ${spec.start}/24) to create one.`,
      );
    if (!subnetContains(subnet, p.family, p.start))
      throw new FlatnetError('invalid', `${spec.start} is outside ${formatSubnet(subnet)}.`);
    return { subnet, range: { start: p.start - subnet.network, end: p.end - subnet.network } };
  }

  /**
   * Refuses when a container address inside the span is assigned; the commit fails if one gets assigned. Only the
   * span's blocks are compared: allocations elsewhere in the pool do not hold the change up.
   */
  private async assertIdle(tx: PoolTxn, range: Interval, what: string): Promise<void> {
    if (anyAssigned(await tx.blocks(range), range))
      throw new FlatnetError('conflict', `Addresses in that range are assigned; release them first (${what}).`);
  }

  async addIpRange(spec: IpRangeSpec): Promise<IpRangeInfo> {
    const { subnet, range } = await this.locate(spec);
    const rec = await updatePool(this.stores.pools, 'add the ip range', subnet, (tx) => {
      const r = addRange(tx.current ?? emptyPoolConfig(formatSubnet(subnet)), subnet, range, new Date().toISOString());
      return { result: r.range, next: r.config };
    });
    return { subnet: formatSubnet(subnet), ...rec, size: count([range]).toString() };
  }

  async removeIpRange(spec: IpRangeSpec): Promise<void> {
    const { subnet, range } = await this.locate(spec);
    await updatePool(this.stores.pools, 'remove the ip range', subnet, async (tx) => {
      if (!tx.current) throw noSuchPool(formatSubnet(subnet));
      const next = removeRange(tx.current, subnet, range);
      await this.assertIdle(tx, range, 'ip-range remove');
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next };
    });
  }

  async listIpRanges(): Promise<IpRangeInfo[]> {
    return (await this.stores.pools.readAll()).flatMap((p) => rangesOf(p));
  }

  async addHostRange(spec: HostRangeSpec): Promise<HostRangeInfo> {
    const { subnet, range } = await this.locate(spec);
    const now = new Date().toISOString();
    await updatePool(this.stores.pools, 'add the host range', subnet, async (tx) => {
      const next = addHostRange(tx.current ?? emptyPoolConfig(formatSubnet(subnet)), subnet, range, spec.gateway, now);
      await this.assertIdle(tx, range, 'host-range add');
      return { result: undefined, next };
    });
    const hr = (await this.listHostRanges()).find((h) => h.subnet === formatSubnet(subnet) && h.createdAt === now);
    if (!hr) throw new FlatnetError('internal', 'The host range vanished right after it was added.');
    return hr;
  }

  async removeHostRange(spec: IpRangeSpec): Promise<void> {
    const { subnet, range } = await this.locate(spec);
    await updatePool(this.stores.pools, 'remove the host range', subnet, (tx) => {
      if (!tx.current) throw noSuchPool(formatSubnet(subnet));
      const next = removeHostRange(tx.current, subnet, range);
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next };
    });
  }

  async listHostRanges(): Promise<HostRangeInfo[]> {
    return (await this.stores.pools.readAll()).flatMap((p) =>
      p.config.hostRanges.map((h) => ({ subnet: p.config.subnet, ...h })),
    );
  }

  async listAssignments(filter: { subnet?: string; hostId?: string } = {}): Promise<AssignmentInfo[]> {
    const out: AssignmentInfo[] = [];
    for await (const page of this.assignmentPages(filter)) out.push(...page);
    return out;
  }

  /**
   * The pools' container assignments, a page at a time. With a host, only its index and its records are read
   * (every pool's records while an upgrade fills the index).
   */
  async *assignmentPages(filter: { subnet?: string; hostId?: string } = {}): AsyncGenerator<AssignmentInfo[]> {
    // An unreadable record is still counted as used; it is listed once someone repairs or releases it.
    // A conflict is no container's: `ip list --conflicts` shows those.
    const info = (subnet: string, address: string, read: AssignmentRead | undefined): AssignmentInfo[] => {
      if (read === undefined || read === 'unreadable' || isConflict(read)) return [];
      if (filter.hostId !== undefined && read.assignment.hostId !== filter.hostId) return [];
      const { poolId: _poolId, ...rest } = read.assignment;
      return [{ address, subnet, kind: 'container', ...rest }];
    };
    if (filter.hostId !== undefined) {
      for await (const page of (await heldBy(this.stores, filter.hostId)).pages) {
        const wanted = page.filter((e) => !filter.subnet || e.subnet === filter.subnet);
        const out = (await recordsOf(this.stores, wanted)).flatMap((r) =>
          info(r.entry.subnet, r.entry.address, r.read),
        );
        if (out.length > 0) yield out;
      }
      return;
    }
    for (const subnet of await this.stores.pools.listSubnets()) {
      const text = formatSubnet(subnet);
      if (filter.subnet && text !== filter.subnet) continue;
      for await (const page of this.stores.addresses.pages(subnet)) {
        const out = page.flatMap((r) => info(text, r.address, r.read));
        if (out.length > 0) yield out;
      }
    }
  }

  async listReleased(filter: { subnet?: string; hostId?: string } = {}): Promise<ReleasedInfo[]> {
    const out: ReleasedInfo[] = [];
    for (const p of await this.stores.pools.readAll()) {
      if (filter.subnet && p.config.subnet !== filter.subnet) continue;
      for (const { address, record } of await this.stores.addresses.listReleased(p.subnet)) {
        if (filter.hostId && record.hostId !== filter.hostId) continue;
        const { poolId: _poolId, ...rest } = record;
        out.push({ address, subnet: p.config.subnet, ...rest, kind: record.endpointName ? 'parked' : 'cooling' });
      }
    }
    return out.sort((a, b) => a.releasedAt.localeCompare(b.releasedAt));
  }

  /** Reads the one record (never the pool's listing); an unreadable record is left to `flatnet ip release`. */
  async releaseAddress(address: string): Promise<AssignmentInfo | undefined> {
    const found = await readAssignment(this.stores, address);
    // A conflict is no container's: only `ip clear-conflict` frees it.
    if (!found || found.read === 'unreadable' || isConflict(found.read)) return undefined;
    const { poolId: _poolId, ...rest } = found.read.assignment;
    const freed = await this.addressService.release(
      { subnet: parseSubnet(found.subnet) },
      found.subnet,
      found.address,
      true,
    );
    return freed === 'container'
      ? { address: found.address, subnet: found.subnet, kind: 'container', ...rest }
      : undefined;
  }

  listConflicts(filter: { subnet?: string } = {}): Promise<ConflictInfo[]> {
    return this.conflicts.list(filter);
  }

  clearConflict(address: string): Promise<ConflictInfo> {
    return this.conflicts.clear(address);
  }

  async poolSummaries(): Promise<PoolSummary[]> {
    const out: PoolSummary[] = [];
    for (const p of await this.stores.pools.readAll()) {
      const size = count(allocatable(p.config, p.subnet));
      const used = await this.stores.addresses.count(p.subnet);
      out.push({
        subnet: p.config.subnet,
        family: p.subnet.family,
        ...(p.config.gateway ? { gateway: p.config.gateway } : {}),
        ranges: rangesOf(p),
        hostRanges: p.config.hostRanges.map((h) => ({ subnet: p.config.subnet, ...h })),
        reservations: p.config.reservations.map((r) => ({
          address: r.address,
          subnet: p.config.subnet,
          kind: r.kind,
          hostIds: Object.keys(r.holders),
        })),
        claims: p.config.claims,
        size: size.toString(),
        used,
        free: (size - BigInt(used)).toString(),
      });
    }
    return out;
  }
}

function rangesOf(p: PoolRecord): IpRangeInfo[] {
  return p.config.ranges.map((r) => ({
    subnet: p.config.subnet,
    ...r,
    size: count([interval(p.subnet, r.start, r.end)]).toString(),
  }));
}
