import type { Subnet } from '../../net/address.js';
import { assertNoOverlap } from '../core/pool-rules.js';
import type { PoolDecision, PoolRepository, PoolTxn } from '../ports.js';

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
  prefetch?: { addresses?: string[] },
): Promise<T> {
  return pools.update(
    what,
    subnet,
    async (tx) => {
      const d = await decide(tx);
      if (tx.current === undefined && d.next !== undefined && d.next !== 'delete') assertNoOverlap(tx.index, subnet);
      return d;
    },
    prefetch,
  );
}
