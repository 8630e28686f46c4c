import { Gauge, Registry } from 'prom-client';
import type { ClusterSource, HolderScan } from '../ipam/services/cluster-census.js';

/**
 * The cluster-wide gauges (pools by address state, hosts up and down), for an operator's tool such as
 * `flatnet dashboard` to serve at /metrics. Never registered on a host's own listener: every read behind them
 * grows with the cluster. The host's own metrics are in metrics.ts. Built over etcd as
 * `clusterMetricsHandler(new ClusterCensus(stores.ipam, stores.hosts, coolingFrom(settings)))`.
 */

export interface ClusterMetricsOptions {
  /** How long one read of the cheap tier serves scrapes (default 5 s): several scrapers cost one read. */
  cacheMs?: number;
  /** How long one scan of every addr record serves (default 60 s). */
  scanMs?: number;
  now?: () => number;
}

/** The gauges, registered in the cluster endpoint's own registry (never the host's). */
function clusterGauges(registry: Registry) {
  const registers = [registry];
  const perPool = (name: string, help: string) => new Gauge({ name, help, labelNames: ['pool'] as const, registers });
  return {
    size: perPool('flatnet_pool_size_addresses', 'Allocatable addresses (ranges minus host ranges and reservations)'),
    held: perPool('flatnet_pool_held_addresses', 'Addresses containers hold'),
    conflicts: perPool('flatnet_pool_conflict_addresses', 'Addresses a machine outside flatnet answered for'),
    cooling: perPool('flatnet_pool_cooling_addresses', 'Released addresses kept from reuse by the cooldown'),
    parked: perPool('flatnet_pool_parked_addresses', 'Released addresses kept for the container name that left'),
    free: perPool('flatnet_pool_free_addresses', 'Addresses an allocation may hand out now'),
    hosts: new Gauge({
      name: 'flatnet_hosts',
      help: 'Registered hosts by state: up (live lease) or down (lease gone)',
      labelNames: ['state'] as const,
      registers,
    }),
    downHolding: new Gauge({
      name: 'flatnet_hosts_down_holding_addresses',
      help: 'Hosts without a live lease that hold addresses',
      registers,
    }),
    downHeld: new Gauge({
      name: 'flatnet_hosts_down_held_addresses',
      help: 'Addresses held by hosts without a live lease',
      registers,
    }),
    scanAge: new Gauge({
      name: 'flatnet_cluster_scan_age_seconds',
      help: 'Age of the scan of every address record behind the conflict and down-host gauges',
      registers,
    }),
  };
}

/** The Prometheus exposition of the cluster gauges, read through `source` at most once per cache period. */
export class ClusterMetrics {
  readonly registry = new Registry();
  private readonly cacheMs: number;
  private readonly scanMs: number;
  private readonly now: () => number;
  private readAt = -Infinity;
  private scan: { at: number; data: HolderScan } | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly g: ReturnType<typeof clusterGauges>;

  constructor(
    private readonly source: ClusterSource,
    o: ClusterMetricsOptions = {},
  ) {
    this.cacheMs = o.cacheMs ?? 5000;
    this.scanMs = o.scanMs ?? 60_000;
    this.now = o.now ?? Date.now;
    this.g = clusterGauges(this.registry);
  }

  /** The exposition text; rejects when etcd could not be read (the caller answers 503). */
  async metrics(): Promise<string> {
    if (this.now() - this.readAt >= this.cacheMs) {
      // One read in flight, however many scrapes arrive meanwhile.
      this.refreshing ??= this.refresh().finally(() => (this.refreshing = undefined));
      await this.refreshing;
    }
    this.g.scanAge.set(this.scan ? (this.now() - this.scan.at) / 1000 : 0);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async refresh(): Promise<void> {
    const started = this.now();
    const scanDue = !this.scan || started - this.scan.at >= this.scanMs;
    const [pools, hosts, scanned] = await Promise.all([
      this.source.pools(),
      this.source.hosts(),
      scanDue ? this.source.holders() : undefined,
    ]);
    if (scanned) this.scan = { at: started, data: scanned };
    const scan = (this.scan as { data: HolderScan }).data;
    const g = this.g;
    for (const gauge of [g.size, g.held, g.conflicts, g.cooling, g.parked, g.free]) gauge.reset();
    for (const p of pools) {
      const pool = { pool: p.pool };
      const conflicts = Math.min(p.records, scan.conflicts.get(p.pool) ?? 0);
      const held = p.records - conflicts;
      g.size.set(pool, p.size);
      g.held.set(pool, held);
      g.conflicts.set(pool, conflicts);
      g.cooling.set(pool, p.cooling);
      g.parked.set(pool, p.parked);
      g.free.set(pool, Math.max(0, p.size - held - conflicts - p.cooling - p.parked));
    }
    const up = new Set(hosts.filter((h) => h.alive).map((h) => h.hostId));
    g.hosts.set({ state: 'up' }, up.size);
    g.hosts.set({ state: 'down' }, hosts.length - up.size);
    // A holder that never registered counts as down too: nothing live answers for its addresses.
    const down = [...scan.heldByHost].filter(([hostId, n]) => n > 0 && !up.has(hostId));
    g.downHolding.set(down.length);
    g.downHeld.set(down.reduce((sum, [, n]) => sum + n, 0));
    this.readAt = started;
  }
}

/** For an HTTP route: the body and content type of one scrape of the cluster gauges. */
export function clusterMetricsHandler(
  source: ClusterSource,
  o: ClusterMetricsOptions = {},
): () => Promise<{ contentType: string; body: string }> {
  const m = new ClusterMetrics(source, o);
  return async () => ({ contentType: m.contentType, body: await m.metrics() });
}
