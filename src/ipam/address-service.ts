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

  /** Frees a container address this host holds, or drops this host's reservation; anything else is a no-op. */
  async release(ref: PoolRef, poolId: string, text: string, force = false): Promise<'container' | 'reservation' | 'none'> {
    const parsed = parseAddress(text);
    if (!subnetContains(ref.subnet, parsed.family, parsed.value)) return 'none';
    const offset = parsed.value - ref.subnet.network;
    const address = addressAt(ref.subnet, offset);
    const addrKey = this.blocks.keys.addr(ref.subnet, address);
    const outcome = await this.blocks.io.retrying(`release ${address}`, async () => {
      const view = await this.blocks.readBlock(ref.subnet, blockOf(offset), [addrKey]);
      const kv = view?.snapshot.kvs.get(addrKey);
      if (!view || !kv) return 'not-assigned' as const;
      const owner = assignmentSchema.safeParse(safeJson(kv.value));
      if (!force && (!owner.success || owner.data.hostId !== this.hostId)) {
        // An unreadable record has no provable owner: only `flatnet ip release` (force) may free it.
        const holder = owner.success ? owner.data.hostId : 'unknown (unreadable record)';
        this.logger.warn({ address, owner: holder, poolId }, 'release of an address another host holds ignored');
        return 'none' as const;
      }
      const ok = await this.blocks.commit(view, {
        bits: withBit(view.bits, bitOf(offset), false),
        allocatable: allocatable(view.pool.config, ref.subnet),
        remove: [{ address, modRevision: kv.modRevision }],
      });
      return ok ? ('container' as const) : undefined;
    });
    if (outcome !== 'not-assigned') return outcome;
    return this.pools.mutate(`release reservation ${address}`, ref.subnet, [], ({ current }) => {
      const next = current ? unreserve(current, this.hostId, address) : undefined;
      return next ? { result: 'reservation' as const, next } : { result: 'none' as const };
    });
  }
}
