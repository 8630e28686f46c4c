import { z } from 'zod';

/**
 * etcd's own counters, read from each member's client URL + /metrics (Prometheus text format) and summed over
 * the members: a client's request is served by the one member it reached, so the sum is the cluster's total.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One sample line: `name{a="x",b="y"} value [timestamp]`. */
const SAMPLE = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const value = z.union([
  z.enum(['+Inf', '-Inf', 'NaN']).transform((v) => (v === 'NaN' ? Number.NaN : v === '+Inf' ? Infinity : -Infinity)),
  z
    .string()
    .regex(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/)
    .transform(Number),
]);

/** The samples of a /metrics page; comments and lines that are not samples are skipped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const v = value.safeParse(m[3]);
    if (!v.success) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1] as string] = (l[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1] as string, labels, value: v.data });
  }
  return out;
}

/** What the scale bench reads of one member, or of the cluster (summed). */
export interface EtcdCounters {
  sentBytes: number;
  receivedBytes: number;
  range: number;
  txn: number;
  put: number;
  deleteRange: number;
  /** Every unary call handled plus every message received on a stream (lease keep-alives, watch requests). */
  requests: number;
  /** Gauges, not summed: the largest member's. */
  keys: number;
  dbBytes: number;
  dbInUseBytes: number;
}

const sum = (samples: Sample[], pick: (s: Sample) => boolean): number =>
  samples.filter(pick).reduce((a, s) => a + s.value, 0);

export function countersOf(samples: Sample[]): EtcdCounters {
  const named = (name: string) => (s: Sample) => s.name === name;
  const handled = (method: string) => (s: Sample) =>
    s.name === 'grpc_server_handled_total' && s.labels.grpc_method === method;
  return {
    sentBytes: sum(samples, named('etcd_network_client_grpc_sent_bytes_total')),
    receivedBytes: sum(samples, named('etcd_network_client_grpc_received_bytes_total')),
    range: sum(samples, handled('Range')),
    txn: sum(samples, handled('Txn')),
    put: sum(samples, handled('Put')),
    deleteRange: sum(samples, handled('DeleteRange')),
    requests:
      sum(samples, (s) => s.name === 'grpc_server_handled_total' && s.labels.grpc_type === 'unary') +
      sum(samples, (s) => s.name === 'grpc_server_msg_received_total' && s.labels.grpc_type !== 'unary'),
    keys: sum(samples, named('etcd_debugging_mvcc_keys_total')),
    dbBytes: sum(samples, named('etcd_mvcc_db_total_size_in_bytes')),
    dbInUseBytes: sum(samples, named('etcd_mvcc_db_total_size_in_use_in_bytes')),
  };
}

const GAUGES = ['keys', 'dbBytes', 'dbInUseBytes'] as const;

/** The cluster's figures from its members': counters add up, gauges take the largest member. */
export function sumMembers(members: EtcdCounters[]): EtcdCounters {
  const keys = Object.keys(countersOf([])) as (keyof EtcdCounters)[];
  const out = countersOf([]);
  for (const k of keys)
    out[k] = (GAUGES as readonly string[]).includes(k)
      ? Math.max(0, ...members.map((m) => m[k]))
      : members.reduce((a, m) => a + m[k], 0);
  return out;
}

/** What happened between two readings (gauges: the later reading). */
export function countersSince(before: EtcdCounters, after: EtcdCounters): EtcdCounters {
  const out = { ...after };
  for (const k of Object.keys(after) as (keyof EtcdCounters)[])
    if (!(GAUGES as readonly string[]).includes(k)) out[k] = after[k] - before[k];
  return out;
}

/** Reads every member's /metrics (plain http client URLs) and sums them; patient: etcd may be busy with 1,000 hosts. */
export async function scrapeCluster(clientUrls: string[]): Promise<EtcdCounters> {
  const pages = await Promise.all(
    clientUrls.map(async (url) => {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`);
      return countersOf(parseMetrics(await res.text()));
    }),
  );
  return sumMembers(pages);
}
