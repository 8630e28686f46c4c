/** The scale bench's arithmetic: percentiles, per-host rates, growth ratios and the extrapolation to a fleet. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** A count over a window, per host and per minute. */
export function perHostPerMinute(count: number, hosts: number, windowMs: number): number {
  return count / hosts / (windowMs / 60_000);
}

/** One idle measurement: per idle host per minute, with how much the cluster held then. */
export interface IdlePoint {
  hosts: number;
  /** Addresses held across the cluster during the window. */
  held: number;
  bytes: number;
  requests: number;
}

/**
 * Per-host cost as a + b * (what the cluster holds), fitted by least squares over the idle points: a is what a
 * host pays for its own state and liveness, b what it pays per address held anywhere (0 once nothing a host does
 * reads other hosts' state). One point gives b = 0.
 */
export function fitPerHost(points: readonly IdlePoint[], pick: (p: IdlePoint) => number): { a: number; b: number } {
  if (points.length === 0) return { a: Number.NaN, b: Number.NaN };
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.held, 0) / n;
  const my = points.reduce((s, p) => s + pick(p), 0) / n;
  const sxx = points.reduce((s, p) => s + (p.held - mx) ** 2, 0);
  if (sxx === 0) return { a: my, b: 0 };
  const b = points.reduce((s, p) => s + (p.held - mx) * (pick(p) - my), 0) / sxx;
  return { a: my - b * mx, b: Math.max(0, b) };
}

export interface FleetInput {
  points: readonly IdlePoint[];
  /** Addresses each measured host held (the a term scales with it: a host's own state). */
  addressesPerHost: number;
  /** etcd's keys and db size (in use) at the largest measurement, with what the cluster held then. */
  keys: number;
  dbBytes: number;
  held: number;
  /** Bytes etcd received per write request under churn (the request-size figure). */
  bytesPerWrite: number;
}

export interface Fleet {
  hosts: number;
  containersPerHost: number;
  requestsPerSecond: number;
  bytesPerSecond: number;
  keys: number;
  dbBytes: number;
  bytesPerWrite: number;
}

/**
 * What `hosts` idle hosts with `containersPerHost` addresses each would ask of etcd, from the fit: the own-state
 * term scaled by containersPerHost / addressesPerHost (an upper bound: liveness does not grow with it), the
 * cluster term at the fleet's total; keys and db size in proportion to the addresses held.
 */
export function extrapolate(input: FleetInput, hosts: number, containersPerHost: number): Fleet {
  const total = hosts * containersPerHost;
  const own = containersPerHost / input.addressesPerHost;
  const perHost = (pick: (p: IdlePoint) => number): number => {
    const { a, b } = fitPerHost(input.points, pick);
    return a * own + b * total;
  };
  const keysPerAddress = input.keys / input.held;
  const dbPerKey = input.dbBytes / input.keys;
  const keys = keysPerAddress * total;
  return {
    hosts,
    containersPerHost,
    requestsPerSecond: (perHost((p) => p.requests) * hosts) / 60,
    bytesPerSecond: (perHost((p) => p.bytes) * hosts) / 60,
    keys,
    dbBytes: keys * dbPerKey,
    bytesPerWrite: input.bytesPerWrite,
  };
}

/** etcd's published limits the fleet is held against. */
export const ETCD_LIMITS = {
  /** etcd docs: the recommended maximum db size (--quota-backend-bytes). */
  dbBytes: 8 * 1024 ** 3,
  /** etcd docs: the default maximum request size. */
  requestBytes: 1.5 * 1024 ** 2,
  /** etcd hardware guide: a large cluster serves 1,000 clients at under 10,000 requests/s. */
  requestsPerSecond: 10_000,
} as const;
