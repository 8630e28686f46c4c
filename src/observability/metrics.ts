import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics. Modules record into these; the opt-in metrics listener serves `registry`.
 * Everything here is about this host: the cluster-wide gauges (pools, hosts) are in cluster-metrics.ts.
 */
export const registry = new Registry();

export const pluginCalls = new Counter({
  name: 'flatnet_plugin_calls_total',
  help: 'Plugin API calls by method and outcome',
  labelNames: ['method', 'outcome'] as const,
  registers: [registry],
});

export const pluginCallSeconds = new Histogram({
  name: 'flatnet_plugin_call_duration_seconds',
  help: 'Plugin API call duration by method',
  labelNames: ['method'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

export const allocations = new Counter({
  name: 'flatnet_allocations_total',
  help: 'Addresses handed out, by kind (container, gateway, aux)',
  labelNames: ['kind'] as const,
  registers: [registry],
});

export const releases = new Counter({
  name: 'flatnet_releases_total',
  help: 'Addresses released',
  registers: [registry],
});

export const allocationFailures = new Counter({
  name: 'flatnet_allocation_failures_total',
  help: 'Allocation requests refused or failed, by reason (exhausted, conflict, invalid, unavailable, internal)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const etcdTxnSeconds = new Histogram({
  name: 'flatnet_etcd_txn_duration_seconds',
  help: 'etcd transaction latency (one commit attempt)',
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

export const etcdTxnRetries = new Counter({
  name: 'flatnet_etcd_txn_retries_total',
  help: 'etcd transactions retried after a compare conflict',
  registers: [registry],
});

/** Set at each scrape from a one-key quorum read: 0 when this host cannot reach etcd. */
export const etcdUp = new Gauge({
  name: 'flatnet_etcd_up',
  help: 'Whether this host reached etcd at the last scrape (a one-key quorum read): 1 or 0',
  registers: [registry],
});

/** From the addresses the reconcile read as this host's: what this host holds, never the cluster's count. */
export const hostHeld = new Gauge({
  name: 'flatnet_host_held_addresses',
  help: 'Addresses this host holds per pool, as its last reconcile round read them',
  labelNames: ['pool'] as const,
  registers: [registry],
});

export const reconcileRounds = new Counter({
  name: 'flatnet_reconcile_rounds_total',
  help: 'Reconcile rounds by outcome (ok, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const reconcileCandidates = new Counter({
  name: 'flatnet_reconcile_candidates_total',
  help: 'Addresses a reconcile round found held in etcd by this host and by nothing on it (summed over rounds)',
  registers: [registry],
});

export const reconcileFreed = new Counter({
  name: 'flatnet_reconcile_freed_total',
  help: 'Addresses the reconcile freed',
  registers: [registry],
});

export const reconcileSkippedPools = new Gauge({
  name: 'flatnet_reconcile_skipped_pools',
  help: "Pools the last reconcile round left alone because this host's view of them was incomplete",
  registers: [registry],
});

export const journalBacklog = new Gauge({
  name: 'flatnet_release_journal_backlog',
  help: 'Releases waiting in the release journal for etcd',
  registers: [registry],
});

export const journalLanded = new Counter({
  name: 'flatnet_release_journal_landed_total',
  help: 'Journaled releases that reached etcd',
  registers: [registry],
});

export const conflictProbes = new Counter({
  name: 'flatnet_conflict_probes_total',
  help: 'ARP probes of upcoming addresses by result (silent, conflict, taken, unrecorded, failed)',
  labelNames: ['result'] as const,
  registers: [registry],
});

// Every value of a bounded label set from the start: a first failure is then an increase from 0, which
// rate() and increase() see.
for (const outcome of ['ok', 'failed']) reconcileRounds.inc({ outcome }, 0);
for (const result of ['silent', 'conflict', 'taken', 'unrecorded', 'failed']) conflictProbes.inc({ result }, 0);
