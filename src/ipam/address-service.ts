import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { BlockStore } from '../store/block-store.js';
import type { PoolStore } from '../store/pool-store.js';
import { safeJson } from '../store/pool-store.js';
import { addressAt, cidrAt, offsetIn, parseAddress, subnetContains } from './address.js';
import { bitOf, blockOf, getBit, withBit } from './bitmap.js';
import { contains } from './intervals.js';
import { assignmentSchema } from './pool-config.js';
import type { PoolRef } from './pool-id.js';
import { allocatable, allowedFor } from './pool-rules.js';
import { reservationAddress, reserve, unreserve } from './reservations.js';
import type { AssignmentMeta } from './allocator.js';

/** Gateway/aux reservations, preferred (--ip) addresses and releases: one compare-and-write txn each. */
export class AddressService {
  constructor(
    private readonly pools: PoolStore,
    private readonly blocks: BlockStore,
    private readonly hostId: string,
    private readonly logger: Logger,
  ) {}

  async reserve(ref: PoolRef, poolId: string, kind: 'gateway' | 'aux', wanted: string): Promise<string> {
    const before = await this.pools.readPool(ref.subnet);
    if (!before) throw new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
    const guess = reservationAddress(before.config, ref.subnet, kind, wanted);
    const keys = this.blocks.keys;
    const address = await this.pools.mutate(`reserve ${kind} address`, ref.subnet, [keys.addr(ref.subnet, guess)], async ({ current, snapshot }) => {
      if (!current) throw new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
      const chosen = reservationAddress(current, ref.subnet, kind, wanted);
      const addrKey = keys.addr(ref.subnet, chosen);
      const held = chosen === guess ? snapshot.kvs.get(addrKey) : (await this.blocks.io.read([addrKey])).kvs.get(addrKey);
      if (held) throw new FlatnetError('conflict', `${chosen} is assigned to a container; it cannot be the ${kind} address.`);
      return { result: chosen, next: reserve(current, this.hostId, kind, chosen), extra: { expect: [{ key: addrKey, modRevision: undefined }] } };
    });
    return cidrAt(ref.subnet, offsetIn(ref.subnet, address));
  }

  /** A container asking for one address (--ip): granted only if free and inside what the pool hands out. */
  async requestSpecific(ref: PoolRef, poolId: string, wanted: string, meta: AssignmentMeta): Promise<string> {
    const offset = offsetIn(ref.subnet, wanted);
    const address = addressAt(ref.subnet, offset);
    const block = blockOf(offset);
    return this.blocks.io.retrying(`assign ${address}`, async () => {
      const view = await this.blocks.readBlock(ref.subnet, block, [this.blocks.keys.addr(ref.subnet, address)]);
      if (!view) throw new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
      if (!contains(allowedFor(view.pool.config, ref), offset)) {
        throw new FlatnetError('invalid', `${address} is not available in pool ${poolId}: it is outside the pool's ranges or reserved (gateway, aux, host range).`);
      }
      if (getBit(view.bits, bitOf(offset))) throw new FlatnetError('conflict', `${address} is already in use.`);
      const assignment = { hostId: this.hostId, since: new Date().toISOString(), poolId, ...meta };
      const ok = await this.blocks.commit(view, {
        bits: withBit(view.bits, bitOf(offset), true),
        allocatable: allocatable(view.pool.config, ref.subnet),
        create: [{ address, assignment }],
      });
      return ok ? cidrAt(ref.subnet, offset) : undefined;
    });
  }

  /**
   * Frees the container addresses of one block (offsets in the pool) that this host holds, or any holder's
   * with force, in one read and one txn. Per offset: 'container' when freed, 'not-assigned' when no container
   * holds it (it may be a reservation), 'none' when another host holds it (ignored, logged).
   */
  async releaseContainers(ref: PoolRef, poolId: string, offsets: bigint[], force = false): Promise<ContainerRelease[]> {
    const first = offsets[0];
    if (first === undefined) return [];
    const block = blockOf(first);
    if (offsets.some((o) => blockOf(o) !== block)) throw new Error('releaseContainers: offsets from more than one block');
    const addresses = offsets.map((o) => addressAt(ref.subnet, o));
    const addrKeys = addresses.map((a) => this.blocks.keys.addr(ref.subnet, a));
    const what = addresses.length === 1 ? `release ${addresses[0]}` : `release ${addresses.length} addresses`;
    return this.blocks.io.retrying(what, async () => {
      const view = await this.blocks.readBlock(ref.subnet, block, [...new Set(addrKeys)]);
      if (!view) return offsets.map(() => 'not-assigned' as const);
      const outcomes: ContainerRelease[] = [];
      const remove: { address: string; modRevision: string }[] = [];
      let bits = view.bits;
      offsets.forEach((offset, i) => {
        const address = addresses[i] as string;
        const kv = view.snapshot.kvs.get(addrKeys[i] as string);
        if (!kv) return outcomes.push('not-assigned');
        // The same address twice in one batch: the first one frees it.
        if (remove.some((r) => r.address === address)) return outcomes.push('none');
        const owner = assignmentSchema.safeParse(safeJson(kv.value));
        if (!force && (!owner.success || owner.data.hostId !== this.hostId)) {
          // An unreadable record has no provable owner: only `flatnet ip release` (force) may free it.
          const holder = owner.success ? owner.data.hostId : 'unknown (unreadable record)';
          this.logger.warn({ address, owner: holder, poolId }, 'release of an address another host holds ignored');
          return outcomes.push('none');
        }
        bits = withBit(bits, bitOf(offset), false);
        remove.push({ address, modRevision: kv.modRevision });
        return outcomes.push('container');
      });
      if (remove.length === 0) return outcomes;
      const ok = await this.blocks.commit(view, { bits, allocatable: allocatable(view.pool.config, ref.subnet), remove });
      return ok ? outcomes : undefined;
    });
  }

  /** Drops this host's gateway/aux reservation of the address, if it has one. */
  releaseReservation(ref: PoolRef, address: string): Promise<'reservation' | 'none'> {
    return this.pools.mutate(`release reservation ${address}`, ref.subnet, [], ({ current }) => {
      const next = current ? unreserve(current, this.hostId, address) : undefined;
      return next ? { result: 'reservation' as const, next } : { result: 'none' as const };
    });
  }

  /** Frees a container address this host holds (any holder's with force), or drops this host's reservation. */
  async release(ref: PoolRef, poolId: string, text: string, force = false): Promise<'container' | 'reservation' | 'none'> {
    const offset = offsetInPool(ref, text);
    if (offset === undefined) return 'none';
    const [outcome] = await this.releaseContainers(ref, poolId, [offset], force);
    if (outcome !== 'not-assigned') return outcome ?? 'none';
    return this.releaseReservation(ref, addressAt(ref.subnet, offset));
  }
}

export type ContainerRelease = 'container' | 'not-assigned' | 'none';

/** The address's offset in the pool's subnet, or undefined when it lies outside (then nothing holds it). */
export function offsetInPool(ref: PoolRef, text: string): bigint | undefined {
  const parsed = parseAddress(text);
  return subnetContains(ref.subnet, parsed.family, parsed.value) ? parsed.value - ref.subnet.network : undefined;
}
