/**
 * The reconcile's decision, pure: which of the addresses etcd says this host holds nothing on the host holds.
 * An address is kept when its pool's view is incomplete, when an allocation on its pool is in flight, when an
 * endpoint holds it, or when it is younger than the grace period (Docker creates the endpoint after the address).
 */

export interface HeldAddress {
  address: string;
  subnet: string;
  poolId: string;
  /** ISO time of the allocation, as stored. */
  since: string;
}

/** What this host really has, as far as it could be seen. */
export interface HostView {
  /** Bare addresses an endpoint holds (state records and Docker's own view). */
  held: ReadonlySet<string>;
  /** Subnets (canonical CIDR) whose every endpoint on this host is in `held`. */
  complete: ReadonlySet<string>;
  /** Why a subnet is not complete (for the log and the CLI). */
  incomplete: ReadonlyMap<string, string>;
  /** Docker's own view was read in full: it lists every network on this host, so every subnet is complete. */
  dockerComplete: boolean;
  /** Set when nothing can be trusted (a damaged endpoint record): no subnet is complete. */
  unusable?: string;
}

export type KeepReason = 'held' | 'young' | 'in-flight' | 'incomplete-view';

export interface ReconcilePlan {
  free: HeldAddress[];
  kept: { address: HeldAddress; reason: KeepReason }[];
  /** Subnets skipped for an incomplete view, with why. */
  skipped: { subnet: string; why: string }[];
}

export function planReconcile(
  assigned: readonly HeldAddress[],
  view: HostView,
  o: { now: number; graceMs: number; inFlight: ReadonlySet<string> },
): ReconcilePlan {
  const plan: ReconcilePlan = { free: [], kept: [], skipped: [] };
  const skipped = new Set<string>();
  for (const a of assigned) {
    const keep = (reason: KeepReason): void => void plan.kept.push({ address: a, reason });
    if (view.unusable !== undefined || !(view.dockerComplete || view.complete.has(a.subnet))) {
      if (!skipped.has(a.subnet)) {
        skipped.add(a.subnet);
        plan.skipped.push({
          subnet: a.subnet,
          why: view.unusable ?? view.incomplete.get(a.subnet) ?? 'no view of its networks on this host',
        });
      }
      keep('incomplete-view');
    } else if (view.held.has(a.address)) keep('held');
    else if (o.inFlight.has(a.subnet)) keep('in-flight');
    else {
      const since = Date.parse(a.since);
      // An unparseable time counts as young: unknown age is never a reason to free.
      if (Number.isNaN(since) || o.now - since < o.graceMs) keep('young');
      else plan.free.push(a);
    }
  }
  return plan;
}
