import type { Subnet } from '../../net/address.js';
import { anyAssigned } from '../core/block-ops.js';
import { assertNoOverlap, dropRanges, poolIsUnused, withoutUnused } from '../core/pool-rules.js';
import type { PoolDecision, PoolRepository, PoolTxn, PoolUpdateOptions } from '../ports.js';

/**
 * PoolRepository.update with the rule every pool change shares: a decision that creates the pool is refused when
 * the subnet overlaps another pool (checked against the index read in the same attempt, so two hosts cannot
 * create overlapping pools at once: the repository compares the index on create).
 */
export function updatePool<T>(
  pools: PoolRepository,
  what: string,
  subnet: Subnet,
  decide: (tx: PoolTxn) => Promise<PoolDecision<T>> | PoolDecision<T>,
  options?: PoolUpdateOptions,
): Promise<T> {
  return pools.update(
    what,
    subnet,
    async (tx) => {
      const d = await decide(tx);
      if (tx.current === undefined && d.next !== undefined && d.next !== 'delete') assertNoOverlap(tx.index, subnet);
      return d;
    },
    options,
  );
}

/**
 * Drops what no host uses any more (unheld reservations, Docker ranges no claim uses and nothing in them is
 * assigned) and the pool once nothing is left: a whole-pool update, which reads every host's claims and holds and
 * conflicts with any host's change of them. Runs after a release that may have left something unused; a pool with
 * nothing to drop is only read.
 */
export function tidyPool(pools: PoolRepository, subnet: Subnet): Promise<void> {
  return pools.update('tidy the pool', subnet, async (tx) => {
    if (!tx.current) return { result: undefined };
    const { config, droppable } = withoutUnused(tx.current);
    let next = config;
    if (droppable.length > 0) {
      // Reading the blocks makes the commit fail if an address in them is assigned meanwhile.
      const idle: typeof droppable = [];
      for (const r of droppable) if (!anyAssigned(await tx.blocks(r), r)) idle.push(r);
      next = dropRanges(config, subnet, idle);
    }
    if (poolIsUnused(next)) return { result: undefined, next: 'delete' };
    const changed =
      next.ranges.length !== tx.current.ranges.length || next.reservations.length !== tx.current.reservations.length;
    return changed ? { result: undefined, next } : { result: undefined };
  });
}
