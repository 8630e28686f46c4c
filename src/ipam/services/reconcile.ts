import { errorMessage } from '../../errors.js';
import { formatSubnet } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { parsePoolId } from '../core/pool-id.js';
import type { AssignmentRead } from '../model/records.js';
import type { IpamStores } from '../ports.js';
import { offsetInPool } from './address-service.js';
import { heldBy } from './held-addresses.js';
import { type HeldAddress, type HostView, planReconcile, type ReconcilePlan } from './reconcile-plan.js';
import { releaseWhere } from './reconcile-release.js';
import type { CoolingOptions } from './allocation-service.js';

/** This host's own view of its endpoints (state dir, local Docker API); see agents/host-view.ts. */
export interface HostViewSource {
  /** `claims`: how many networks this host holds per subnet (etcd's word), to tell whether local records cover them. */
  view(claims: ReadonlyMap<string, number>): Promise<HostView>;
}

export interface ReconcileOptions {
  /** An address allocated less than this long ago is never freed (Docker creates the endpoint after it). */
  graceMs: number;
  /** Subnets with an address allocation in flight in this process. */
  inFlight?: () => ReadonlySet<string>;
  /** The cooldown and sticky rules: a freed orphan cools like any release. */
  cooling?: CoolingOptions;
}

export interface ReconcileResult {
  plan: ReconcilePlan;
  /** Addresses freed (empty on a dry run). */
  freed: string[];
}

/**
 * Frees the addresses etcd says this host holds and nothing on the host holds: what a container removed while
 * the plugin was down, or while etcd was unreachable, left behind. Reads the claims, then the host's view, then
 * the assignments, in that order: anything allocated after the view was taken is younger than the grace period.
 */
export class Reconciler {
  constructor(
    private readonly stores: IpamStores,
    private readonly hostId: string,
    private readonly source: HostViewSource,
    private readonly o: ReconcileOptions,
    private readonly logger: Logger,
  ) {}

  /** Reads this host's claim keys only (and the configs): what another host claims is none of its reconcile. */
  private async claimsPerSubnet(): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const c of await this.stores.pools.claimsOf(this.hostId)) {
      const subnet = formatSubnet(parsePoolId(c.poolId).subnet);
      out.set(subnet, (out.get(subnet) ?? 0) + 1);
    }
    return out;
  }

  /** This host's addresses: its own index (paged), or every pool's records while an upgrade fills the index. */
  private async assignedHere(): Promise<{ assigned: HeldAddress[]; fromIndex: boolean }> {
    const assigned: HeldAddress[] = [];
    const listing = await heldBy(this.stores, this.hostId);
    for await (const page of listing.pages) assigned.push(...page);
    return { assigned, fromIndex: listing.fromIndex };
  }

  async plan(): Promise<ReconcilePlan> {
    return (await this.planned()).plan;
  }

  private async planned(): Promise<{ plan: ReconcilePlan; fromIndex: boolean }> {
    const claims = await this.claimsPerSubnet();
    const view = await this.source.view(claims);
    const { assigned, fromIndex } = await this.assignedHere();
    const plan = planReconcile(assigned, view, {
      now: Date.now(),
      graceMs: this.o.graceMs,
      inFlight: this.o.inFlight?.() ?? new Set(),
    });
    return { plan, fromIndex };
  }

  async run(opts: { dryRun?: boolean } = {}): Promise<ReconcileResult> {
    const { plan, fromIndex } = await this.planned();
    for (const s of plan.skipped)
      this.logger.warn(
        { subnet: s.subnet, why: s.why },
        'reconcile skipped a pool: its view on this host is incomplete',
      );
    if (opts.dryRun || plan.free.length === 0) return { plan, freed: [] };
    const items = plan.free.flatMap((a) => {
      let ref;
      try {
        ref = parsePoolId(a.poolId);
      } catch (err) {
        this.logger.warn(
          { address: a.address, poolId: a.poolId, error: errorMessage(err) },
          'reconcile: record names no valid pool; left alone',
        );
        return [];
      }
      const offset = offsetInPool(ref, a.address);
      if (offset === undefined) return [];
      const accept = (held: AssignmentRead): boolean =>
        held !== 'unreadable' && held.assignment.hostId === this.hostId && held.assignment.since === a.since;
      return [{ ref, offset, accept }];
    });
    const freed = await releaseWhere(this.stores, items, this.o.cooling);
    if (freed.length > 0) this.logger.info({ freed }, 'reconcile freed addresses no endpoint on this host holds');
    // Index entries whose record was not this host's any more (written around an older version): they go.
    const unfreed = plan.free.filter((a) => !freed.includes(a.address));
    if (fromIndex && unfreed.length > 0) {
      const dropped = await this.stores.hostIndex.dropStale(this.hostId, unfreed);
      if (dropped > 0) this.logger.info({ dropped }, 'reconcile dropped stale entries of its host index');
    }
    return { plan, freed };
  }
}
