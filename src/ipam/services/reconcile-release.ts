import { addressAt } from '../../net/address.js';
import { blockOf } from '../core/bitmap.js';
import { releaseInBlock } from '../core/block-ops.js';
import type { PoolRef } from '../core/pool-id.js';
import { allocatable } from '../core/pool-rules.js';
import type { AssignmentRead } from '../model/records.js';
import type { IpamStores } from '../ports.js';
import { releaseCommit } from './address-service.js';
import { blockState, COOLING_OFF, type CoolingOptions } from './allocation-service.js';

/** One address to free if, read again at commit time, its record still passes `accept`. */
export interface ConditionalRelease {
  ref: PoolRef;
  offset: bigint;
  accept: (held: AssignmentRead) => boolean;
}

/**
 * Frees container addresses only when their records are the ones the caller decided about (same holder, same
 * allocation time): a reconcile, a journal replay or a host forget must never free an address that was released
 * and handed out again in between. One read and one compare-and-swap per block. Returns the addresses freed.
 */
/** `cooling`: the pool's cooldown and sticky rules, so that a freed address cools like any other release. */
export async function releaseWhere(
  stores: IpamStores,
  items: readonly ConditionalRelease[],
  cooling: CoolingOptions = COOLING_OFF,
): Promise<string[]> {
  const byBlock = new Map<string, ConditionalRelease[]>();
  for (const it of items) {
    const key = `${it.ref.subnet.family}|${it.ref.subnet.network}|${blockOf(it.offset)}`;
    byBlock.set(key, [...(byBlock.get(key) ?? []), it]);
  }
  const freed: string[] = [];
  // A block's addresses go in as many commits as the store's capacity asks for, each its own compare-and-swap of
  // the block (read again each time), so a lost reply or a crash between two leaves a consistent block behind.
  const chunks = [...byBlock.values()].flatMap((group) => {
    const per = stores.blocks.capacity((group[0] as ConditionalRelease).ref.subnet).removals;
    const out: ConditionalRelease[][] = [];
    for (let i = 0; i < group.length; i += per) out.push(group.slice(i, i + per));
    return out;
  });
  for (const group of chunks) {
    const { ref } = group[0] as ConditionalRelease;
    const block = blockOf((group[0] as ConditionalRelease).offset);
    const addresses = group.map((g) => addressAt(ref.subnet, g.offset));
    const done = await stores.retry.retrying(`free ${addresses.length} unheld address(es)`, async () => {
      const view = await stores.blocks.read(ref.subnet, block, [...new Set(addresses)]);
      if (!view) return [];
      const requests = group.flatMap((g, i) => {
        const address = addresses[i] as string;
        const held = view.assignments.get(address);
        return held !== undefined && g.accept(held) ? [{ offset: g.offset, address, held }] : [];
      });
      if (requests.length === 0) return [];
      const plan = releaseInBlock(
        blockState(view, cooling),
        requests,
        { hostId: '', force: true },
        allocatable(view.config, ref.subnet),
      );
      if (!plan.edit) return [];
      const ok = await stores.blocks.commit(view, releaseCommit(ref, view, plan, plan.edit));
      return ok ? plan.freed : undefined;
    });
    freed.push(...done);
  }
  return freed;
}
