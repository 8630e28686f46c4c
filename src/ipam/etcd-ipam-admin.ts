import type { Etcd3 } from 'etcd3';
import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { BlockStore } from '../store/block-store.js';
import { EtcdIo } from '../store/etcd-io.js';
import { IpamKeys, prefixEnd } from '../store/keys.js';
import { PoolStore, type PoolState, safeJson } from '../store/pool-store.js';
import { formatSubnet, parseAddress, type Subnet, subnetContains } from './address.js';
import { AddressService } from './address-service.js';
import { addHostRange, addRange, removeHostRange, removeRange } from './admin-rules.js';
import type { AssignmentInfo, HostRangeInfo, HostRangeSpec, IpamAdmin, IpRangeInfo, IpRangeSpec, PoolSummary } from './admin.js';
import { count, type Interval } from './intervals.js';
import { assignmentSchema, emptyPoolConfig, poolIsUnused } from './pool-config.js';
import { allocatable, interval } from './pool-rules.js';
import { anyAssigned } from './pool-service.js';
import { parseRangeSpec } from './range-spec.js';

/** The operator's IPAM over etcd (CLI and metrics); every change is one compare-and-write txn on the pool. */
export class EtcdIpamAdmin implements IpamAdmin {
  private readonly pools: PoolStore;
  private readonly blocks: BlockStore;
  private readonly addresses: AddressService;

  constructor(o: { etcd: Etcd3; prefix: string; logger: Logger }) {
    const io = new EtcdIo(o.etcd, o.logger);
    const keys = new IpamKeys(o.prefix);
    this.pools = new PoolStore(io, keys);
    this.blocks = new BlockStore(io, keys);
    this.addresses = new AddressService(this.pools, this.blocks, 'admin', o.logger);
  }

  /** The subnet a range names by its /prefix, or the existing pool holding it. */
  private async locate(spec: IpRangeSpec): Promise<{ subnet: Subnet; range: Interval }> {
    const p = parseRangeSpec(spec.start, spec.end);
    const subnet = p.subnet ?? (await this.pools.readIndex()).find((s) => subnetContains(s, p.family, p.start));
    if (!subnet) throw new FlatnetError('invalid', `No pool holds ${spec.start}; give the prefix length (e.g. ${spec.start}/24) to create one.`);
    if (!subnetContains(subnet, p.family, p.start)) throw new FlatnetError('invalid', `${spec.start} is outside ${formatSubnet(subnet)}.`);
    return { subnet, range: { start: p.start - subnet.network, end: p.end - subnet.network } };
  }

  /** Refuses when a container address inside the span is assigned; the txn compares the blocks read. */
  private async idleCheck(subnet: Subnet, range: Interval, what: string) {
    const { blocks, revision } = await this.blocks.readAllBlocks(subnet);
    if (anyAssigned(blocks, range)) throw new FlatnetError('conflict', `Addresses in that range are assigned; release them first (${what}).`);
    const prefix = this.blocks.keys.blockPrefix(subnet);
    return { unchangedSince: [{ start: prefix, end: prefixEnd(prefix), revision }] };
  }

  async addIpRange(spec: IpRangeSpec): Promise<IpRangeInfo> {
    const { subnet, range } = await this.locate(spec);
    const rec = await this.pools.mutate('add the ip range', subnet, [], ({ current }) => {
      const r = addRange(current ?? emptyPoolConfig(formatSubnet(subnet)), subnet, range, new Date().toISOString());
      return { result: r.range, next: r.config };
    });
    return { subnet: formatSubnet(subnet), ...rec, size: count([range]).toString() };
  }

  async removeIpRange(spec: IpRangeSpec): Promise<void> {
    const { subnet, range } = await this.locate(spec);
    await this.pools.mutate('remove the ip range', subnet, [], async ({ current }) => {
      if (!current) throw new FlatnetError('not-found', `There is no pool ${formatSubnet(subnet)}.`);
      const next = removeRange(current, subnet, range);
      const extra = await this.idleCheck(subnet, range, 'ip-range remove');
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next, extra };
    });
  }

  async listIpRanges(): Promise<IpRangeInfo[]> {
    return (await this.pools.readAllPools()).flatMap((p) =>
      p.config.ranges.map((r) => ({ subnet: p.config.subnet, ...r, size: count([interval(p.subnet, r.start, r.end)]).toString() })));
  }

  async addHostRange(spec: HostRangeSpec): Promise<HostRangeInfo> {
    const { subnet, range } = await this.locate(spec);
    const now = new Date().toISOString();
    await this.pools.mutate('add the host range', subnet, [], async ({ current }) => {
      const next = addHostRange(current ?? emptyPoolConfig(formatSubnet(subnet)), subnet, range, spec.gateway, now);
      const extra = await this.idleCheck(subnet, { start: range.start, end: range.end }, 'host-range add');
      return { result: undefined, next, extra };
    });
    const hr = (await this.listHostRanges()).find((h) => h.subnet === formatSubnet(subnet) && h.createdAt === now);
    if (!hr) throw new FlatnetError('internal', 'The host range vanished right after it was added.');
    return hr;
  }

  async removeHostRange(spec: IpRangeSpec): Promise<void> {
    const { subnet, range } = await this.locate(spec);
    await this.pools.mutate('remove the host range', subnet, [], ({ current }) => {
      if (!current) throw new FlatnetError('not-found', `There is no pool ${formatSubnet(subnet)}.`);
      const next = removeHostRange(current, subnet, range);
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next };
    });
  }

  async listHostRanges(): Promise<HostRangeInfo[]> {
    return (await this.pools.readAllPools()).flatMap((p) => p.config.hostRanges.map((h) => ({ subnet: p.config.subnet, ...h })));
  }

  private async assignmentsOf(p: PoolState): Promise<AssignmentInfo[]> {
    const prefix = this.blocks.keys.addrPrefix(p.subnet);
    const snap = await this.blocks.io.readRange(prefix, prefixEnd(prefix));
    const out: AssignmentInfo[] = [];
    for (const kv of snap.kvs.values()) {
      const a = assignmentSchema.safeParse(safeJson(kv.value));
      if (!a.success) continue;
      const { poolId: _poolId, ...rest } = a.data;
      out.push({ address: kv.key.slice(prefix.length), subnet: p.config.subnet, kind: 'container', ...rest });
    }
    return out;
  }

  async listAssignments(filter: { subnet?: string; hostId?: string } = {}): Promise<AssignmentInfo[]> {
    const out: AssignmentInfo[] = [];
    for (const p of await this.pools.readAllPools()) {
      if (filter.subnet && p.config.subnet !== filter.subnet) continue;
      out.push(...(await this.assignmentsOf(p)).filter((a) => !filter.hostId || a.hostId === filter.hostId));
    }
    return out;
  }

  async releaseAddress(address: string): Promise<AssignmentInfo | undefined> {
    const a = parseAddress(address);
    const subnet = (await this.pools.readIndex()).find((s) => subnetContains(s, a.family, a.value));
    if (!subnet) return undefined;
    const held = (await this.listAssignments({ subnet: formatSubnet(subnet) })).find((x) => parseAddress(x.address).value === a.value);
    if (!held) return undefined;
    const freed = await this.addresses.release({ subnet }, formatSubnet(subnet), address, true);
    return freed === 'container' ? held : undefined;
  }

  async poolSummaries(): Promise<PoolSummary[]> {
    const out: PoolSummary[] = [];
    for (const p of await this.pools.readAllPools()) {
      const size = count(allocatable(p.config, p.subnet));
      const prefix = this.blocks.keys.addrPrefix(p.subnet);
      const used = (await this.blocks.io.readRange(prefix, prefixEnd(prefix), { countOnly: true })).count;
      out.push({
        subnet: p.config.subnet,
        family: p.subnet.family,
        ...(p.config.gateway ? { gateway: p.config.gateway } : {}),
        ranges: p.config.ranges.map((r) => ({ subnet: p.config.subnet, ...r, size: count([interval(p.subnet, r.start, r.end)]).toString() })),
        hostRanges: p.config.hostRanges.map((h) => ({ subnet: p.config.subnet, ...h })),
        reservations: p.config.reservations.map((r) => ({ address: r.address, subnet: p.config.subnet, kind: r.kind, hostIds: Object.keys(r.holders) })),
        claims: p.config.claims,
        size: size.toString(),
        used,
        free: (size - BigInt(used)).toString(),
      });
    }
    return out;
  }
}
