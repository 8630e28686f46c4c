import { FlatnetError, noConfiguredPool } from '../../errors.js';
import { formatSubnet, parseSubnet, type Subnet } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { anyAssigned } from '../core/block-ops.js';
import { formatPoolId, parsePoolId, type PoolRef } from '../core/pool-id.js';
import { claimPool, dropRanges, poolData, poolIsUnused, releaseClaim } from '../core/pool-rules.js';
import type { RequestPoolInput, RequestPoolResult } from '../contract.js';
import { emptyPoolConfig } from '../model/records.js';
import type { PoolRepository } from '../ports.js';
import { updatePool } from './pool-update.js';

/** RequestPool / ReleasePool: per-host claims on cluster-wide pools keyed by subnet. */
export class PoolService {
  constructor(
    private readonly pools: PoolRepository,
    private readonly hostId: string,
    private readonly logger: Logger,
  ) {}

  async requestPool(input: RequestPoolInput): Promise<RequestPoolResult> {
    const family = input.v6 ? 6 : 4;
    if (input.pool === '') {
      if (input.subPool !== '') throw new FlatnetError('invalid', 'An --ip-range needs a --subnet.');
      return this.claim({ subnet: await this.pickConfigured(family) });
    }
    const subnet = parseSubnet(input.pool);
    if (subnet.family !== family) throw new FlatnetError('invalid', `${input.pool} is not an IPv${family} subnet.`);
    if (input.subPool === '') return this.claim({ subnet });
    const subPool = parseSubnet(input.subPool);
    const poolId = formatPoolId(subnet, subPool);
    return this.claim(parsePoolId(poolId));
  }

  private async claim(ref: PoolRef): Promise<RequestPoolResult> {
    const poolId = formatPoolId(ref.subnet, ref.subPool);
    const config = await updatePool(this.pools, 'create the pool', ref.subnet, (tx) => {
      const next = claimPool(
        tx.current ?? emptyPoolConfig(formatSubnet(ref.subnet)),
        ref,
        this.hostId,
        poolId,
        new Date().toISOString(),
      );
      return { result: next, next };
    });
    this.logger.info({ poolId, hostId: this.hostId }, 'pool claimed');
    return { poolId, pool: formatSubnet(ref.subnet), data: poolData(config, ref.subnet) };
  }

  /** Docker left the choice to us: a configured pool (with admin ranges) this host does not hold yet. */
  private async pickConfigured(family: 4 | 6): Promise<Subnet> {
    for (const p of await this.pools.readAll()) {
      if (p.subnet.family !== family) continue;
      if (!p.config.ranges.some((r) => r.origin === 'admin')) continue;
      if (p.config.claims.some((c) => c.hostId === this.hostId)) continue;
      return p.subnet;
    }
    throw noConfiguredPool(family);
  }

  /**
   * Drops one claim of this host (the newest); Docker ranges no claim uses any more go when nothing in them is
   * assigned. `notAfter`: only a claim made by then may go. `exactly`: only the claim made at that time (a replay
   * of a release that may have applied). `chose` hears the claim each attempt decided to drop.
   */
  async releasePool(
    poolId: string,
    o: { notAfter?: string; exactly?: string; chose?: (since: string) => void } = {},
  ): Promise<void> {
    const ref = parsePoolId(poolId);
    await updatePool(this.pools, 'release the pool', ref.subnet, async (tx) => {
      if (!tx.current) return { result: undefined };
      const { config, droppable, released } = releaseClaim(tx.current, this.hostId, poolId, o);
      if (released === undefined) return { result: undefined };
      o.chose?.(released.since);
      let next = config;
      if (droppable.length > 0) {
        // Reading the blocks makes the commit fail if an address in them is assigned meanwhile.
        const idle: typeof droppable = [];
        for (const r of droppable) if (!anyAssigned(await tx.blocks(r), r)) idle.push(r);
        next = dropRanges(config, ref.subnet, idle);
      }
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next };
    });
    this.logger.info({ poolId, hostId: this.hostId }, 'pool released');
  }
}
