import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics. Modules record into these; the opt-in metrics listener serves `registry`.
 * Pool gauges are filled at scrape time by a collector the server registers (see server/).
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

export const poolSize = new Gauge({
  name: 'flatnet_pool_addresses',
  help: 'Allocatable addresses per pool (ranges minus host ranges and reservations)',
  labelNames: ['pool'] as const,
  registers: [registry],
});

export const poolUsed = new Gauge({
  name: 'flatnet_pool_addresses_used',
  help: 'Addresses assigned to containers per pool',
  labelNames: ['pool'] as const,
  registers: [registry],
});
