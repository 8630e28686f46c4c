import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { BlockStore } from '../store/block-store.js';
import { prefixEnd } from '../store/keys.js';
import type { PoolStore } from '../store/pool-store.js';
import { formatSubnet, parseSubnet, type Subnet } from './address.js';
import { getBit } from './bitmap.js';
import { type Interval, intersect } from './intervals.js';
import { emptyPoolConfig, poolIsUnused } from './pool-config.js';
import { formatPoolId, parsePoolId, type PoolRef } from './pool-id.js';
import { claimPool, dropRanges, poolData, releaseClaim } from './pool-rules.js';
import type { RequestPoolInput, RequestPoolResult } from './ipam-driver.js';

/** RequestPool / ReleasePool: per-host claims on cluster-wide pools keyed by subnet. */
export class PoolService {
  constructor(
    private readonly pools: PoolStore,
    private readonly blocks: BlockStore,
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
    const config = await this.pools.mutate('create the pool', ref.subnet, [], ({ current }) => {
      const next = claimPool(current ?? emptyPoolConfig(formatSubnet(ref.subnet)), ref, this.hostId, poolId, new Date().toISOString());
      return { result: next, next };
    });
    this.logger.info({ poolId, hostId: this.hostId }, 'pool claimed');
    return { poolId, pool: formatSubnet(ref.subnet), data: poolData(config, ref.subnet) };
  }

  /** Docker left the choice to us: a configured pool (with admin ranges) this host does not hold yet. */
  private async pickConfigured(family: 4 | 6): Promise<Subnet> {
    for (const p of await this.pools.readAllPools()) {
      if (p.subnet.family !== family) continue;
      if (!p.config.ranges.some((r) => r.origin === 'admin')) continue;
      if (p.config.claims.some((c) => c.hostId === this.hostId)) continue;
      return p.subnet;
    }
    throw new FlatnetError('exhausted', `No configured IPv${family} pool is left for this host; pass --subnet (with --ip-range) or add a range with \`flatnet ip-range add\`.`);
  }

  async releasePool(poolId: string): Promise<void> {
    const ref = parsePoolId(poolId);
    await this.pools.mutate('release the pool', ref.subnet, [], async ({ current }) => {
      if (!current || !current.claims.some((c) => c.hostId === this.hostId && c.poolId === poolId)) return { result: undefined };
      const { config, droppable } = releaseClaim(current, this.hostId, poolId);
      let next = config;
      let unchangedSince;
      if (droppable.length > 0) {
        const { blocks, revision } = await this.blocks.readAllBlocks(ref.subnet);
        const idle = droppable.filter((r) => !anyAssigned(blocks, r));
        next = dropRanges(config, ref.subnet, idle);
        const prefix = this.blocks.keys.blockPrefix(ref.subnet);
        unchangedSince = [{ start: prefix, end: prefixEnd(prefix), revision }];
      }
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next, extra: unchangedSince ? { unchangedSince } : {} };
    });
    this.logger.info({ poolId, hostId: this.hostId }, 'pool released');
  }
}

export function anyAssigned(blocks: Map<bigint, Uint8Array>, range: Interval): boolean {
  for (const [index, bits] of blocks) {
    for (const piece of intersect([range], [{ start: index << 8n, end: (index << 8n) + 255n }])) {
      for (let o = piece.start; o <= piece.end; o++) if (getBit(bits, Number(o & 255n))) return true;
    }
  }
  return false;
}
