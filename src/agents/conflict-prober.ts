import { performance } from 'node:perf_hooks';
import { errorMessage } from '../errors.js';
import type { ProbeResult } from '../hostnet/arp-probe.js';
import { type CandidateState, planProbes } from '../ipam/core/conflicts.js';
import { parsePoolId } from '../ipam/core/pool-id.js';
import type { ConflictSeen } from '../ipam/model/records.js';
import type { PoolWatch } from '../ipam/ports.js';
import type { RecordOutcome } from '../ipam/services/conflict-service.js';
import { formatSubnet } from '../net/address.js';
import type { Logger } from '../observability/logger.js';
import { conflictProbes } from '../observability/metrics.js';
import { sleepUnlessAborted } from '../util/abortable-sleep.js';
import { BackgroundWork } from '../util/background-work.js';

/** What the prober reads, probes and records through. */
export interface ConflictProberDeps {
  hostId: string;
  /** The pool IDs this host holds a claim on (its networks' pools): read from this host's own keys only. */
  pools: () => Promise<string[]>;
  /**
   * Tells of other hosts' changes to those pools (poolChanged, resync): each round makes it follow this host's
   * pools, stop() closes it.
   */
  watch?: PoolWatch;
  /** The flatnet bridge carrying this subnet on this host; undefined = none (no flatnet network, another driver). */
  bridgeFor: (subnet: string) => Promise<string | undefined>;
  /** The next addresses this host's allocator hands out for the pool, in order. */
  upcoming: (poolId: string, n: number) => Promise<string[]>;
  probe: (ifname: string, address: string) => Promise<ProbeResult>;
  record: (poolId: string, address: string, seen: ConflictSeen) => Promise<RecordOutcome>;
  logger: Logger;
  now?: () => number;
  /**
   * A cheap local fingerprint of this host's networks (the state dir's records), looked at every watchMs: when it
   * changes (a network was created), a round runs at once instead of at the next tick.
   */
  localNetworks?: () => Promise<string>;
}

export interface ConflictProberOptions {
  /** Pre-probed candidates kept per pool. */
  candidates: number;
  /** A candidate probed free longer ago than this is probed again. */
  staleMs: number;
  /** How often every pool is looked at (new networks, stale candidates). */
  tickMs: number;
  /** Allocations from a pool since its last refresh that call for a top-up (the candidates run that low). */
  topUpAfter: number;
  /** How often the local networks' fingerprint is looked at. */
  watchMs: number;
  /**
   * Probes wait until no address was handed out and no network created here for this long: a host starting a
   * burst of containers (a swarm node taking its tasks) is not slowed by probe spawns between them, and the burst
   * is served by one refresh.
   */
  quietMs: number;
  /** A host that never goes quiet still gets its probes after this long. */
  maxDeferMs: number;
}

/**
 * Probes are process spawns (arping), and a spawn while Docker starts a container slows `docker run`: so the
 * top-up comes in batches, and probes wait for a pause in container starts.
 */
export const PROBE_DEFAULTS: ConflictProberOptions = {
  candidates: 24,
  staleMs: 60_000,
  tickMs: 10_000,
  topUpAfter: 8,
  watchMs: 1000,
  quietMs: 3000,
  maxDeferMs: 15_000,
};

interface PoolProbes {
  known: Map<string, CandidateState>;
  refreshing: boolean;
  again: boolean;
  /** After a failure of probing itself, no new probe before this time (the next tick tries again). */
  pausedUntil: number;
  /** Allocations since the last refresh began. */
  allocatedSince: number;
  /** When the pool left this host's claims (its last network here went); undefined while claimed. */
  leftAt: number | undefined;
}

/**
 * RFC 5227 conflict detection without slowing `docker run`: per pool with a flatnet bridge on this host, the
 * addresses the allocator hands out next are ARP-probed ahead of time, in the background. An address someone
 * answers for is recorded in etcd as a conflict, which every host's allocator then skips. A probe never runs on
 * a plugin call's path: an allocation only pokes the prober, which tops its candidates up shortly after.
 */
export class ConflictProber {
  private readonly o: ConflictProberOptions;
  private readonly now: () => number;
  private readonly pools = new Map<string, PoolProbes>();
  /** Rounds, refreshes and probes under way, the two periodic looks, and the stop signal the quiet gate takes. */
  private readonly work: BackgroundWork;
  /** "<poolId>|<reason>" said once in the log; cleared when probing works there again. */
  private readonly said = new Set<string>();
  private lastNetworks: string | undefined;
  /** performance.now() of the last allocation or new local network (the quiet gate's own clock, not `now`). */
  private lastBusy = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly deps: ConflictProberDeps,
    options: Partial<ConflictProberOptions> = {},
  ) {
    this.o = { ...PROBE_DEFAULTS, ...options };
    this.now = deps.now ?? Date.now;
    this.work = new BackgroundWork(deps.logger);
  }

  private get stopped(): boolean {
    return this.work.stopped;
  }

  /** First round now (in the background), then one every tickMs. */
  start(): void {
    this.track(this.round());
    // Each tick starts its round without waiting for the last: a round may wait for quiet (see whenQuiet).
    void this.work.every('conflict probe tick', this.o.tickMs, async () => this.track(this.round()));
    const local = this.deps.localNetworks;
    if (local)
      void this.work.every('local networks look', this.o.watchMs, async () => {
        const sig = await local();
        const changed = sig !== this.lastNetworks;
        if (changed && this.lastNetworks !== undefined) this.lastBusy = performance.now();
        this.lastNetworks = sig;
        // Not waited for here: a round may wait for quiet, and the next network must still be seen.
        if (changed) this.track(this.round());
      });
  }

  /**
   * An address of the pool was handed out: once topUpAfter of them were, its candidates are topped up at the next
   * pause (see whenQuiet; the allocations meanwhile join that one refresh). Never blocks, never throws.
   */
  allocated(poolId: string): void {
    this.lastBusy = performance.now();
    const s = this.pools.get(poolId);
    if (this.stopped || s === undefined) return;
    s.allocatedSince++;
    if (s.allocatedSince >= this.o.topUpAfter) this.track(this.refresh(poolId));
  }

  /** Another host changed this pool's config (its ranges or reservations): its candidates are planned again now. */
  poolChanged(subnet: string): void {
    if (this.stopped) return;
    for (const [id, s] of this.pools)
      if (s.leftAt === undefined && subnetOf(id) === subnet) this.track(this.refresh(id));
  }

  /** The watch may have missed changes (its revision was compacted): a full round, as at the start. */
  resync(): void {
    if (!this.stopped) this.track(this.round());
  }

  /** One look at every pool of this host: plans each pool's candidates and starts their probes (settle() waits for those). */
  async round(): Promise<void> {
    let poolIds: string[];
    try {
      poolIds = [...new Set(await this.deps.pools())];
    } catch (err) {
      this.sayOnce(
        '*',
        'pools',
        { error: errorMessage(err) },
        "conflict probe: could not read this host's pools; trying again next round",
      );
      return;
    }
    this.said.delete('*|pools');
    // A pool whose network went keeps its probe results until they go stale: a network made again soon (a swarm
    // node's network comes and goes with its tasks) then needs no burst of probes while its containers start.
    const now = this.now();
    for (const [id, s] of this.pools) {
      if (poolIds.includes(id)) s.leftAt = undefined;
      else if (s.leftAt === undefined) s.leftAt = now;
      else if (now - s.leftAt > this.o.staleMs) this.pools.delete(id);
    }
    const subnets = new Map(
      poolIds.flatMap((id) => {
        try {
          const s = parsePoolId(id).subnet;
          return [[formatSubnet(s), s] as const];
        } catch {
          return [];
        }
      }),
    );
    this.deps.watch?.follow([...subnets.values()]);
    await Promise.all(poolIds.map((id) => this.refresh(id)));
  }

  /** Waits for every refresh and probe under way (tests, shutdown). */
  settle(): Promise<void> {
    return this.work.idle();
  }

  /** No new rounds or probes, the quiet gate let go, the pool watch closed; then waits for what still runs. */
  async stop(): Promise<void> {
    const stopped = this.work.stop();
    await this.deps.watch?.close();
    await stopped;
  }

  /** Until quietMs passed without an allocation or a new network (maxDeferMs at most, or stop()). */
  private async whenQuiet(): Promise<void> {
    const deadline = performance.now() + this.o.maxDeferMs;
    for (;;) {
      const t = performance.now();
      const wait = Math.min(this.lastBusy + this.o.quietMs, deadline) - t;
      if (wait <= 0 || this.stopped) return;
      if (!(await sleepUnlessAborted(wait, this.work.signal))) return;
    }
  }

  /** Tracks work already started; its own failures are handled where it runs, so none is logged twice. */
  private track(p: Promise<unknown>): void {
    void this.work.track(
      p.then(
        () => undefined,
        () => undefined,
      ),
    );
  }

  private sayOnce(poolId: string, reason: string, fields: Record<string, unknown>, msg: string): void {
    const key = `${poolId}|${reason}`;
    if (this.said.has(key)) return;
    this.said.add(key);
    this.deps.logger.warn({ poolId, ...fields }, msg);
  }

  private poolState(poolId: string): PoolProbes {
    let s = this.pools.get(poolId);
    if (!s) {
      s = { known: new Map(), refreshing: false, again: false, pausedUntil: 0, allocatedSince: 0, leftAt: undefined };
      this.pools.set(poolId, s);
    }
    return s;
  }

  /** Re-plans one pool's candidates and starts the probes it needs; one refresh per pool at a time. */
  private async refresh(poolId: string): Promise<void> {
    if (this.stopped) return;
    const s = this.poolState(poolId);
    if (s.refreshing) {
      s.again = true;
      return;
    }
    s.refreshing = true;
    try {
      do {
        s.again = false;
        await this.refreshOnce(poolId, s);
      } while (s.again && !this.stopped);
    } finally {
      s.refreshing = false;
    }
  }

  private async refreshOnce(poolId: string, s: PoolProbes): Promise<void> {
    if (this.now() < s.pausedUntil) return;
    await this.whenQuiet();
    if (this.stopped) return;
    s.allocatedSince = 0;
    let subnet;
    try {
      subnet = parsePoolId(poolId).subnet;
    } catch {
      return;
    }
    if (subnet.family !== 4) {
      this.sayOnce(poolId, 'ipv6', {}, 'conflict probe: IPv6 pools are not probed (ARP is IPv4 only)');
      return;
    }
    let bridge: string | undefined;
    let upcoming: string[];
    try {
      bridge = await this.deps.bridgeFor(formatSubnet(subnet));
      if (bridge === undefined) {
        this.sayOnce(
          poolId,
          'no-bridge',
          {},
          'conflict probe cannot run for this pool: no flatnet network (bridge) for it on this host (IPAM only under another driver, or no network yet); its addresses are handed out unprobed',
        );
        return;
      }
      this.said.delete(`${poolId}|no-bridge`);
      upcoming = await this.deps.upcoming(poolId, this.o.candidates);
    } catch (err) {
      this.sayOnce(
        poolId,
        'read',
        { error: errorMessage(err) },
        "conflict probe: could not read the pool's next addresses; trying again next round",
      );
      return;
    }
    this.said.delete(`${poolId}|read`);
    const plan = planProbes(upcoming, s.known, this.now(), this.o.staleMs);
    s.known = plan.keep;
    for (const address of plan.probe) {
      s.known.set(address, { state: 'probing' });
      this.track(this.probeOne(poolId, bridge, address, s));
    }
  }

  private async probeOne(poolId: string, bridge: string, address: string, s: PoolProbes): Promise<void> {
    let result: ProbeResult;
    try {
      result = await this.deps.probe(bridge, address);
    } catch (err) {
      conflictProbes.inc({ result: 'failed' });
      s.known.delete(address);
      s.pausedUntil = this.now() + this.o.tickMs;
      this.sayOnce(
        poolId,
        'probe',
        { bridge, error: errorMessage(err) },
        'conflict probe cannot run (arping failed); addresses are handed out unprobed until it works',
      );
      return;
    }
    this.said.delete(`${poolId}|probe`);
    if (!result.answered) {
      conflictProbes.inc({ result: 'silent' });
      // Still a candidate (not handed out meanwhile): fresh until staleMs.
      if (s.known.get(address)?.state === 'probing') s.known.set(address, { state: 'free', probedAt: this.now() });
      return;
    }
    s.known.delete(address);
    const seen: ConflictSeen = {
      mac: result.mac,
      seenAt: new Date(this.now()).toISOString(),
      seenBy: this.deps.hostId,
    };
    try {
      const outcome = await this.deps.record(poolId, address, seen);
      conflictProbes.inc({ result: outcome === 'recorded' ? 'conflict' : 'taken' });
      const log = this.deps.logger;
      if (outcome === 'recorded')
        log.warn(
          { poolId, address, mac: result.mac, bridge },
          'address conflict: a machine outside flatnet answers for this address; recorded, no host hands it out (flatnet ip clear-conflict frees it)',
        );
      else
        log.info(
          { poolId, address, mac: result.mac, outcome },
          'a probed address answered but is no longer free; nothing recorded',
        );
    } catch (err) {
      conflictProbes.inc({ result: 'unrecorded' });
      this.deps.logger.warn(
        { poolId, address, mac: result.mac, error: errorMessage(err) },
        'address conflict seen but not recorded; probed again next round',
      );
    }
    // The recorded address left the upcoming set: the next one takes its place.
    if (!this.stopped) this.track(this.refresh(poolId));
  }
}

/** The subnet of a pool ID as pools are named; '' when malformed. */
function subnetOf(poolId: string): string {
  try {
    return formatSubnet(parsePoolId(poolId).subnet);
  } catch {
    return '';
  }
}
