import { FlatnetError, noConfiguredPool } from '../../errors.js';
import { formatSubnet, parseSubnet, type Subnet } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { formatPoolId, parsePoolId, type PoolRef } from '../core/pool-id.js';
import { claimPool, poolData, poolIsUnused, releaseClaim } from '../core/pool-rules.js';
import type { RequestPoolInput, RequestPoolResult } from '../contract.js';
import { type ClaimRecord, emptyPoolConfig } from '../model/records.js';
import type { PoolRepository } from '../ports.js';
import { errorMessage } from '../../errors.js';
import { tidyPool, updatePool } from './pool-update.js';

/**
 * RequestPool / ReleasePool: per-host claims on cluster-wide pools keyed by subnet. Both are this host's own
 * changes (PoolUpdateOptions.onlyHost): a burst of them on many hosts (a swarm service's network made on every node
 * at once) conflicts only with the rare change of the shared config (the pool's creation, a new range).
 */
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
    const config = await updatePool(
      this.pools,
      'create the pool',
      ref.subnet,
      (tx) => {
        const next = claimPool(
          tx.current ?? emptyPoolConfig(formatSubnet(ref.subnet)),
          ref,
          this.hostId,
          poolId,
          new Date().toISOString(),
        );
        return { result: next, next };
      },
      { onlyHost: this.hostId },
    );
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
    let released: ClaimRecord | undefined;
    let mayDrop = false;
    let dropped: string[] = [];
    await updatePool(
      this.pools,
      'release the pool',
      ref.subnet,
      (tx) => {
        released = undefined;
        if (!tx.current) return { result: undefined };
        const r = releaseClaim(tx.current, this.hostId, poolId, o);
        if (r.released === undefined) return { result: undefined };
        o.chose?.(r.released.since);
        released = r.released;
        // A Docker range may have lost its last claim; a pool of nothing but claims and holds may be unused.
        mayDrop =
          tx.current.ranges.some((x) => x.origin === 'docker') ||
          poolIsUnused({ ...tx.current, claims: [], reservations: [] });
        const still = new Set(r.config.reservations.filter((x) => x.holders[this.hostId]).map((x) => x.address));
        dropped = tx.current.reservations
          .filter((x) => x.holders[this.hostId] !== undefined && !still.has(x.address))
          .map((x) => x.address);
        return { result: undefined, next: r.config };
      },
      { onlyHost: this.hostId },
    );
    if (released) await this.tidyAfterRelease(ref.subnet, mayDrop, dropped);
    this.logger.info({ poolId, hostId: this.hostId }, 'pool released');
  }

  /**
   * After this host's release, drops what may have become unused: only when it can have (`mayDrop`: a Docker range or
   * a pool of nothing but claims and holds; or a hold this host gave up that nobody else has, by a count), since
   * that read covers every host. Of hosts releasing at once, the
   * last to commit sees all their releases, so one of them tidies. A failure leaves the pool as it is (it only
   * keeps something unused) and does not fail the release.
   */
  private async tidyAfterRelease(subnet: Subnet, mayDrop: boolean, dropped: string[]): Promise<void> {
    try {
      let needed = mayDrop;
      for (const address of dropped) if (!needed && !(await this.pools.isHeld(subnet, address))) needed = true;
      if (needed) await tidyPool(this.pools, subnet);
    } catch (err) {
      this.logger.warn({ subnet: formatSubnet(subnet), error: errorMessage(err) }, 'could not tidy the pool');
    }
  }
}
