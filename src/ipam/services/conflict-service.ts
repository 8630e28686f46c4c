import { FlatnetError, poolNotFound } from '../../errors.js';
import { addressAt, formatSubnet, offsetIn, parseAddress, subnetContains } from '../../net/address.js';
import { blockOf } from '../core/bitmap.js';
import { assignOffset } from '../core/block-ops.js';
import { conflictRecord, isConflict } from '../core/conflicts.js';
import type { PoolRef } from '../core/pool-id.js';
import { allocatable } from '../core/pool-rules.js';
import type { ConflictInfo } from '../contract.js';
import { CONFLICT_HOLDER, type ConflictSeen } from '../model/records.js';
import type { IpamStores } from '../ports.js';
import { blockState, editCommit } from './allocation-service.js';
import { heldBy, recordsOf } from './held-addresses.js';
import { releaseWhere } from './reconcile-release.js';

/** 'taken': a container (or another conflict) holds it meanwhile; 'not-allowed': no longer in the pool's ranges. */
export type RecordOutcome = 'recorded' | 'taken' | 'not-allowed';

/**
 * Conflict records: an address a machine outside flatnet answered for, stored like an assignment of that one
 * offset (the same compares: bit free, addr key absent), so that every host's allocator skips it.
 */
export class ConflictService {
  constructor(private readonly stores: IpamStores) {}

  /** Records the conflict unless the address got held meanwhile (then the answer was most likely that holder). */
  async record(ref: PoolRef, poolId: string, address: string, seen: ConflictSeen): Promise<RecordOutcome> {
    const offset = offsetIn(ref.subnet, address);
    const canonical = addressAt(ref.subnet, offset);
    const { blocks, retry } = this.stores;
    return retry.retrying(`record the conflict on ${canonical}`, async () => {
      const view = await blocks.read(ref.subnet, blockOf(offset), [canonical]);
      if (!view) throw poolNotFound(poolId);
      const all = allocatable(view.config, ref.subnet);
      // Cooling does not matter here: a conflict takes the offset whatever its cooling state.
      const decided = assignOffset(blockState(view), offset, all, all);
      if (decided.outcome !== 'assigned') return decided.outcome;
      const create = [{ address: canonical, assignment: conflictRecord(poolId, seen) }];
      const ok = await blocks.commit(view, { ...editCommit(ref, decided.edit), create });
      return ok ? ('recorded' as const) : undefined;
    });
  }

  /** Conflict records are held by CONFLICT_HOLDER: its host index lists them (the pools while it is filled in). */
  async list(filter: { subnet?: string } = {}): Promise<ConflictInfo[]> {
    const out: ConflictInfo[] = [];
    for await (const page of (await heldBy(this.stores, CONFLICT_HOLDER)).pages) {
      const wanted = page.filter((e) => filter.subnet === undefined || e.subnet === filter.subnet);
      for (const { entry, read } of await recordsOf(this.stores, wanted)) {
        if (!isConflict(read)) continue;
        const { mac, seenAt, seenBy } = read.assignment.conflict;
        out.push({
          address: entry.address,
          subnet: entry.subnet,
          ...(mac !== undefined ? { mac } : {}),
          seenAt,
          seenBy,
        });
      }
    }
    return out.sort((a, b) => a.seenAt.localeCompare(b.seenAt) || a.address.localeCompare(b.address));
  }

  /**
   * Forgets a conflict: the address is free at once (no cooldown: no container held it), and is probed again
   * before it is handed out when it comes up among a server's candidates. Refused for anything but a conflict.
   */
  async clear(text: string): Promise<ConflictInfo> {
    const a = parseAddress(text);
    const subnet = (await this.stores.pools.listSubnets()).find((s) => subnetContains(s, a.family, a.value));
    if (!subnet) throw new FlatnetError('invalid', `${text} is in no pool; there is no conflict to clear.`);
    const offset = a.value - subnet.network;
    const address = addressAt(subnet, offset);
    const view = await this.stores.blocks.read(subnet, blockOf(offset), [address]);
    const read = view?.assignments.get(address);
    if (!isConflict(read)) {
      const what = read === undefined ? 'free' : 'held by a container';
      throw new FlatnetError(
        'invalid',
        `${address} is not a recorded conflict (it is ${what}); see flatnet ip list --conflicts.`,
      );
    }
    const seen = read.assignment.conflict;
    const freed = await releaseWhere(this.stores, [
      { ref: { subnet }, offset, accept: (h) => isConflict(h) && h.assignment.conflict.seenAt === seen.seenAt },
    ]);
    if (freed.length === 0)
      throw new FlatnetError(
        'conflict',
        `The record of ${address} changed meanwhile; look again with flatnet ip list --conflicts.`,
      );
    return {
      address,
      subnet: formatSubnet(subnet),
      ...(seen.mac !== undefined ? { mac: seen.mac } : {}),
      seenAt: seen.seenAt,
      seenBy: seen.seenBy,
    };
  }
}
