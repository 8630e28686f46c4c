import { addressInUse, addressNotAllocatable, errorMessage, FlatnetError, poolNotFound } from '../../errors.js';
import { addressAt, cidrAt, offsetIn, parseAddress, subnetContains } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { blockOf } from '../core/bitmap.js';
import {
  assignOffset,
  type BlockEdit,
  type ContainerRelease,
  releaseInBlock,
  type ReleasePlan,
} from '../core/block-ops.js';
import { isConflict } from '../core/conflicts.js';
import type { PoolRef } from '../core/pool-id.js';
import { allocatable, allowedFor } from '../core/pool-rules.js';
import { declareAux, reservationAddress, reserve, unreserve } from '../core/reservations.js';
import type { BlockCommit, BlockSnapshot, IpamStores } from '../ports.js';
import {
  type AssignmentMeta,
  blockState,
  COOLING_OFF,
  editCommit,
  type CoolingOptions,
  namesOf,
} from './allocation-service.js';
import { tidyPool, updatePool } from './pool-update.js';

export type { ContainerRelease } from '../core/block-ops.js';

/** Gateway/aux reservations, preferred (--ip) addresses and releases: one compare-and-swap each, retried. */
export class AddressService {
  constructor(
    private readonly stores: IpamStores,
    private readonly hostId: string,
    private readonly logger: Logger,
    private readonly cooling: CoolingOptions = COOLING_OFF,
  ) {}

  /** `declared`: see reserve() in core/reservations.ts. */
  async reserve(
    ref: PoolRef,
    poolId: string,
    kind: 'gateway' | 'aux',
    wanted: string,
    declared = true,
  ): Promise<string> {
    const { pools } = this.stores;
    // A named address comes with the first read; the gateway's default needs the config first.
    const named = wanted === '' ? [] : [addressAt(ref.subnet, offsetIn(ref.subnet, wanted))];
    const address = await updatePool(
      pools,
      `reserve ${kind} address`,
      ref.subnet,
      async (tx) => {
        if (!tx.current) throw poolNotFound(poolId);
        const chosen = reservationAddress(tx.current, ref.subnet, kind, wanted);
        if (await tx.assignment(chosen))
          throw new FlatnetError('conflict', `${chosen} is assigned to a container; it cannot be the ${kind} address.`);
        return { result: chosen, next: reserve(tx.current, this.hostId, kind, chosen, declared) };
      },
      { addresses: named, onlyHost: this.hostId },
    );
    return cidrAt(ref.subnet, offsetIn(ref.subnet, address));
  }

  /** This host's undeclared aux reservations among `addresses` become shared (see declareAux in core). */
  async declareAux(ref: PoolRef, addresses: readonly string[]): Promise<void> {
    const canonical = addresses.map((a) => addressAt(ref.subnet, offsetIn(ref.subnet, a)));
    await updatePool(
      this.stores.pools,
      'declare aux addresses',
      ref.subnet,
      (tx) => {
        const next = tx.current ? declareAux(tx.current, this.hostId, canonical) : undefined;
        return next ? { result: undefined, next } : { result: undefined };
      },
      { onlyHost: this.hostId },
    );
  }

  /** A container asking for one address (--ip): granted only if free and inside what the pool hands out. */
  async requestSpecific(ref: PoolRef, poolId: string, wanted: string, meta: AssignmentMeta): Promise<string> {
    const offset = offsetIn(ref.subnet, wanted);
    const address = addressAt(ref.subnet, offset);
    const { blocks, retry } = this.stores;
    return retry.retrying(`assign ${address}`, async () => {
      const view = await blocks.read(ref.subnet, blockOf(offset), [address]);
      if (!view) throw poolNotFound(poolId);
      const all = allocatable(view.config, ref.subnet);
      const decided = assignOffset(blockState(view, this.cooling), offset, allowedFor(view.config, ref, all), all);
      if (decided.outcome === 'not-allowed') throw addressNotAllocatable(address, poolId);
      const held = view.assignments.get(address);
      if (decided.outcome === 'taken' && isConflict(held)) {
        const mac = held.assignment.conflict.mac;
        throw new FlatnetError(
          'conflict',
          `${address} is in use by a machine outside flatnet${mac ? ` (MAC ${mac})` : ''}; flatnet ip clear-conflict ${address} once it is gone.`,
        );
      }
      if (decided.outcome === 'taken') throw addressInUse(address);
      const assignment = { hostId: this.hostId, since: new Date().toISOString(), poolId, ...meta };
      const create = [{ address, assignment }];
      const ok = await blocks.commit(view, { ...editCommit(ref, decided.edit), create, names: namesOf(create) });
      return ok ? cidrAt(ref.subnet, offset) : undefined;
    });
  }

  /**
   * Frees the container addresses of one block (offsets in the pool) that this host holds, or any holder's
   * with force, in one read and one commit (see releaseInBlock for the outcomes).
   */
  async releaseContainers(ref: PoolRef, poolId: string, given: bigint[], force = false): Promise<ContainerRelease[]> {
    // A batch longer than one commit may carry is served in part; the rest go to the next run (GroupCommit).
    const offsets = given.slice(0, this.stores.blocks.capacity(ref.subnet).removals);
    const first = offsets[0];
    if (first === undefined) return [];
    const block = blockOf(first);
    if (offsets.some((o) => blockOf(o) !== block))
      throw new Error('releaseContainers: offsets from more than one block');
    const addresses = offsets.map((o) => addressAt(ref.subnet, o));
    const what = addresses.length === 1 ? `release ${addresses[0]}` : `release ${addresses.length} addresses`;
    const { blocks, retry } = this.stores;
    return retry.retrying(what, async () => {
      const view = await blocks.read(ref.subnet, block, [...new Set(addresses)]);
      if (!view) return offsets.map(() => 'not-assigned' as const);
      const requests = offsets.map((offset, i) => {
        const address = addresses[i] as string;
        return { offset, address, held: view.assignments.get(address) };
      });
      const plan = releaseInBlock(
        blockState(view, this.cooling),
        requests,
        { hostId: this.hostId, force },
        allocatable(view.config, ref.subnet),
      );
      for (const f of plan.foreign)
        this.logger.warn(
          { address: f.address, owner: f.owner, poolId },
          'release of an address another host holds ignored',
        );
      if (!plan.edit) return plan.outcomes;
      const ok = await blocks.commit(view, releaseCommit(ref, view, plan, plan.edit));
      return ok ? plan.outcomes : undefined;
    });
  }

  /**
   * Drops this host's gateway/aux reservation of the address, if it has one; when nobody holds it any more, the
   * reservation goes from the shared config (a whole-pool tidy, see tidyPool).
   */
  async releaseReservation(ref: PoolRef, address: string): Promise<'reservation' | 'none'> {
    const { pools } = this.stores;
    const outcome = await updatePool(
      pools,
      `release reservation ${address}`,
      ref.subnet,
      (tx) => {
        const next = tx.current ? unreserve(tx.current, this.hostId, address) : undefined;
        return next ? { result: 'reservation' as const, next } : { result: 'none' as const };
      },
      { onlyHost: this.hostId },
    );
    if (outcome === 'reservation') {
      try {
        if (!(await pools.isHeld(ref.subnet, address))) await tidyPool(pools, ref.subnet);
      } catch (err) {
        this.logger.warn({ address, error: errorMessage(err) }, 'could not tidy the pool');
      }
    }
    return outcome;
  }

  /** Frees a container address this host holds (any holder's with force), or drops this host's reservation. */
  async release(
    ref: PoolRef,
    poolId: string,
    text: string,
    force = false,
  ): Promise<'container' | 'reservation' | 'none'> {
    const offset = offsetInPool(ref, text);
    if (offset === undefined) return 'none';
    const [outcome] = await this.releaseContainers(ref, poolId, [offset], force);
    if (outcome !== 'not-assigned') return outcome ?? 'none';
    return this.releaseReservation(ref, addressAt(ref.subnet, offset));
  }
}

/** The address's offset in the pool's subnet, or undefined when it lies outside (then nothing holds it). */
export function offsetInPool(ref: PoolRef, text: string): bigint | undefined {
  const parsed = parseAddress(text);
  return subnetContains(ref.subnet, parsed.family, parsed.value) ? parsed.value - ref.subnet.network : undefined;
}

/**
 * The commit of a release plan: the freed addresses' records go; the last holder stays readable while the address
 * cools (flatnet ip list --released), and a named container's name index points at it so that the name gets it
 * back; a freed address that does not cool drops any stale released record.
 */
export function releaseCommit(ref: PoolRef, view: BlockSnapshot, plan: ReleasePlan, edit: BlockEdit): BlockCommit {
  const releasedAt = new Date().toISOString();
  const release = plan.cooled.flatMap(({ address }) => {
    const held = view.assignments.get(address);
    return held && held !== 'unreadable' ? [{ address, record: { ...held.assignment, releasedAt } }] : [];
  });
  const names = release.flatMap((r) =>
    r.record.endpointName ? [{ name: r.record.endpointName, address: r.address }] : [],
  );
  const dropReleased = plan.freed.filter((a) => !release.some((r) => r.address === a) && view.released.has(a));
  return { ...editCommit(ref, edit), remove: plan.freed, release, names, dropReleased };
}
