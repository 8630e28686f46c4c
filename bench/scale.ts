/**
 * Scale bench: what each idle host costs etcd, and how bursts and churn behave, as the number of hosts grows.
 * H simulated hosts per run, each the server's own IPAM composition (src/server/production-drivers.ts
 * createHostIpam) with its own host id, stores, lease registration, heal loops (reconcile) and conflict prober
 * (its ARP probe a no-op), against a real 3-member etcd on loopback, fresh for every H. Every figure is read from
 * etcd's /metrics on each member, summed over the members.
 *
 * Per H: setup (every host claims pool A and takes --addresses in it), warm-up, then the idle window (nothing but
 * the hosts' own loops: bytes and requests per idle host per minute), then a swarm-like burst (every host at once:
 * RequestPool on a new pool B, then 5 RequestAddress), then churn (every host releases and requests in a loop).
 * After the runs: the server's RSS with --memory-addresses held in its pool (bench/memory-held.ts), and an
 * extrapolation to 10,000 hosts x 100 containers against etcd's published limits.
 *
 * Run: npx tsc -p . && node dist/bench/scale.js [--hosts 10,100,1000] [--idle-s 60] [--reconcile-ms 60000] ...
 * (npm run bench:scale -- ...). --help lists the flags.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { z } from 'zod';
import { errorMessage } from '../src/errors.js';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { silentLogger } from '../src/observability/logger.js';
import { createEtcdClient } from '../src/store/etcd-client.js';
import { type EtcdCounters, countersSince, scrapeCluster } from './scale/etcd-metrics.js';
import { ETCD_LIMITS, extrapolate, type IdlePoint, percentile, perHostPerMinute } from './scale/figures.js';
import { measureHeldMemory, type HeldMemory } from './scale/memory-held.js';
import { SimHost } from './scale/sim-host.js';
import { onTeardown, tearDownOnSignals } from './scale/teardown.js';

const POOL_A = '10.0.0.0/14';
const POOL_B = '10.8.0.0/16';
const BURST_ADDRESSES = 5;

const flagsSchema = z.object({
  hosts: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .filter((h) => h.trim() !== '')
        .map((h) => Number(h.trim())),
    )
    .pipe(z.array(z.number().int().min(1).max(5000))),
  addresses: z.coerce.number().int().min(1).max(200),
  'idle-s': z.coerce.number().min(1),
  'warmup-s': z.coerce.number().min(0),
  'reconcile-ms': z.coerce.number().int().min(1000),
  'probe-tick-ms': z.coerce.number().int().min(1000),
  'churn-s': z.coerce.number().min(0),
  clients: z.coerce.number().int().min(1),
  'etcd-timeout-ms': z.coerce.number().int().min(100),
  'setup-concurrency': z.coerce.number().int().min(1),
  'memory-addresses': z.coerce.number().int().min(0),
});
type Flags = z.infer<typeof flagsSchema>;

const DEFAULTS: Record<keyof Flags, string> = {
  hosts: '10,100,1000',
  addresses: '60',
  'idle-s': '60',
  'warmup-s': '15',
  'reconcile-ms': '60000',
  'probe-tick-ms': '10000',
  'churn-s': '20',
  clients: '100',
  'etcd-timeout-ms': '5000',
  'setup-concurrency': '8',
  'memory-addresses': '1000000',
};

function readFlags(): Flags {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, { type: 'string' as const }])),
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(
      `node dist/bench/scale.js ${Object.entries(DEFAULTS)
        .map(([k, v]) => `[--${k} ${v}]`)
        .join(' ')}\n--memory-addresses 0 skips the memory run; --hosts '' runs only that.\n`,
    );
    process.exit(0);
  }
  const merged = { ...DEFAULTS, ...Object.fromEntries(Object.entries(values).filter(([k]) => k !== 'help')) };
  const parsed = flagsSchema.safeParse(merged);
  if (!parsed.success) {
    process.stderr.write(
      `scale bench: bad flags: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}\n`,
    );
    process.exit(2);
  }
  return parsed.data;
}

interface Latencies {
  samples: number[];
  errors: number;
  firstError?: string;
}

const newLatencies = (): Latencies => ({ samples: [], errors: 0 });

async function timed<T>(into: Latencies, fn: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  try {
    const out = await fn();
    into.samples.push(performance.now() - t0);
    return out;
  } catch (err) {
    into.errors++;
    into.firstError ??= errorMessage(err);
    return undefined;
  }
}

/** Runs fn over items, at most n at a time. */
async function eachLimited<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface RunResult {
  hosts: number;
  clients: number;
  idle: EtcdCounters;
  idleMs: number;
  afterSetup: EtcdCounters;
  held: number;
  setupErrors: number;
  burstPool: Latencies;
  burstAddress: Latencies;
  burstHost: Latencies;
  /** etcd's counters over the burst: Txn per host tells whether hosts' RequestPools retried against each other. */
  burstCounters: EtcdCounters;
  /** p99 of this process's event-loop delay over the burst: the H simulated hosts share one process's CPU. */
  burstLoopP99Ms: number;
  churn: Latencies;
  churnMs: number;
  churnCounters: EtcdCounters;
}

async function runHosts(h: number, f: Flags, log: (line: string) => void): Promise<RunResult> {
  const cluster = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-scale-'));
  const urls = cluster.members.map((m) => m.clientUrl);
  const prefix = `/flatnet-scale-${h}`;
  const clients: Etcd3[] = Array.from({ length: Math.min(h, f.clients) }, () =>
    createEtcdClient({ etcdEndpoints: cluster.endpoints, etcdPrefix: prefix, etcdTimeoutMs: f['etcd-timeout-ms'] }),
  );
  const logger = silentLogger();
  const hosts: SimHost[] = [];
  const tearDown = onTeardown(async () => {
    for (const c of clients) c.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  });
  try {
    for (let i = 0; i < h; i++)
      hosts.push(
        await SimHost.create({
          hostId: `host-${String(i).padStart(4, '0')}`,
          etcd: clients[i % clients.length] as Etcd3,
          endpoints: cluster.endpoints,
          prefix,
          stateDir: join(dir, `h${i}`),
          reconcileIntervalMs: f['reconcile-ms'],
          probeTickMs: f['probe-tick-ms'],
          etcdTimeoutMs: f['etcd-timeout-ms'],
          logger,
        }),
      );
    for (const host of hosts) host.start(logger);
    await Promise.all(hosts.map((host) => host.registered));

    // Setup: a few hosts at a time (this is not the burst), each claims pool A and takes its addresses at once.
    const poolA = new Map<SimHost, string>();
    let setupErrors = 0;
    const t0 = performance.now();
    await eachLimited(hosts, f['setup-concurrency'], async (host) => {
      try {
        const poolId = await host.requestPool(POOL_A);
        poolA.set(host, poolId);
        await Promise.all(Array.from({ length: f.addresses }, () => host.requestAddress(poolId)));
      } catch (err) {
        if (setupErrors++ === 0) log(`  setup error: ${errorMessage(err)}`);
      }
    });
    const held = hosts.reduce((s, x) => s + x.heldCount, 0);
    log(
      `  setup: ${held} addresses on ${h} hosts in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${setupErrors} errors`,
    );
    await sleep(f['warmup-s'] * 1000);

    const idleStart = await scrapeCluster(urls);
    const w0 = performance.now();
    await sleep(f['idle-s'] * 1000);
    const idleEnd = await scrapeCluster(urls);
    const idleMs = performance.now() - w0;
    const idle = countersSince(idleStart, idleEnd);
    log(
      `  idle ${(idleMs / 1000).toFixed(0)} s: ${fmtBytes(perHostPerMinute(idle.sentBytes + idle.receivedBytes, h, idleMs))}/host/min, ${perHostPerMinute(idle.requests, h, idleMs).toFixed(1)} req/host/min (range ${perHostPerMinute(idle.range, h, idleMs).toFixed(1)}, txn ${perHostPerMinute(idle.txn, h, idleMs).toFixed(1)})`,
    );

    // Burst: every host at once, as on `docker service create` with a new network across a swarm.
    const burstPool = newLatencies();
    const burstAddress = newLatencies();
    const burstHost = newLatencies();
    const burstBefore = await scrapeCluster(urls);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    await Promise.all(
      hosts.map((host) =>
        timed(burstHost, async () => {
          const poolId = await timed(burstPool, () => host.requestPool(POOL_B));
          if (poolId === undefined) throw new Error('RequestPool failed');
          const got = await Promise.all(
            Array.from({ length: BURST_ADDRESSES }, () => timed(burstAddress, () => host.requestAddress(poolId))),
          );
          if (got.includes(undefined)) throw new Error('RequestAddress failed');
        }),
      ),
    );
    loop.disable();
    const burstLoopP99Ms = loop.percentile(99) / 1e6;
    const burstCounters = countersSince(burstBefore, await scrapeCluster(urls));
    log(
      `  burst: host p50 ${ms(percentile(burstHost.samples, 50))} p99 ${ms(percentile(burstHost.samples, 99))}, errors pool ${burstPool.errors} address ${burstAddress.errors}${burstPool.firstError ? ` (${burstPool.firstError})` : ''}${burstAddress.firstError ? ` (address: ${burstAddress.firstError})` : ''}; etcd Txn ${(burstCounters.txn / h).toFixed(1)} and Range ${(burstCounters.range / h).toFixed(1)} per host; bench event-loop delay p99 ${ms(burstLoopP99Ms)}`,
    );

    // Churn: every host releases its oldest address in pool A and requests a new one, in a loop.
    const churn = newLatencies();
    const churnBefore = await scrapeCluster(urls);
    const c0 = performance.now();
    const until = c0 + f['churn-s'] * 1000;
    await Promise.all(
      hosts.map(async (host) => {
        const poolId = poolA.get(host);
        if (poolId === undefined) return;
        while (performance.now() < until) {
          await host.releaseOldest(poolId).catch(() => undefined);
          await timed(churn, () => host.requestAddress(poolId));
        }
      }),
    );
    const churnMs = performance.now() - c0;
    const churnCounters = countersSince(churnBefore, await scrapeCluster(urls));
    log(
      `  churn ${(churnMs / 1000).toFixed(0)} s: ${churn.samples.length} allocations, p50 ${ms(percentile(churn.samples, 50))} p99 ${ms(percentile(churn.samples, 99))}, ${churn.errors} errors${churn.firstError ? ` (${churn.firstError})` : ''}`,
    );
    return {
      hosts: h,
      clients: clients.length,
      idle,
      idleMs,
      afterSetup: idleStart,
      held,
      setupErrors,
      burstPool,
      burstAddress,
      burstHost,
      burstCounters,
      burstLoopP99Ms,
      churn,
      churnMs,
      churnCounters,
    };
  } finally {
    await Promise.all(hosts.map((x) => x.stop().catch(() => undefined)));
    await tearDown();
  }
}

function fmtBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

function ms(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(n >= 100 ? 0 : 1)} ms` : '-';
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function report(f: Flags, runs: RunResult[], memory: HeldMemory | undefined): string {
  const out: string[] = [];
  const base = runs[0];
  if (base === undefined) return memory?.summary ?? '';
  const idleOf = (r: RunResult) => ({
    bytes: perHostPerMinute(r.idle.sentBytes + r.idle.receivedBytes, r.hosts, r.idleMs),
    sent: perHostPerMinute(r.idle.sentBytes, r.hosts, r.idleMs),
    received: perHostPerMinute(r.idle.receivedBytes, r.hosts, r.idleMs),
    requests: perHostPerMinute(r.idle.requests, r.hosts, r.idleMs),
    range: perHostPerMinute(r.idle.range, r.hosts, r.idleMs),
    txn: perHostPerMinute(r.idle.txn, r.hosts, r.idleMs),
  });
  const b = idleOf(base);
  out.push(
    `Idle cost per host per minute (${f.addresses} addresses per host in one shared pool; reconcile every ${f['reconcile-ms'] / 1000} s, prober tick ${f['probe-tick-ms'] / 1000} s, lease TTL 15 s; window ${f['idle-s']} s after ${f['warmup-s']} s warm-up; etcd /metrics summed over 3 members). Ratios against H=${base.hosts}; target at H=1000: at most 1.2.`,
  );
  out.push(
    table(
      ['H', 'etcd clients', 'bytes sent', 'bytes recv', 'bytes total', 'ratio', 'requests', 'ratio', 'Range', 'Txn'],
      runs.map((r) => {
        const x = idleOf(r);
        return [
          String(r.hosts),
          String(r.clients),
          fmtBytes(x.sent),
          fmtBytes(x.received),
          fmtBytes(x.bytes),
          `x${(x.bytes / b.bytes).toFixed(2)}`,
          x.requests.toFixed(1),
          `x${(x.requests / b.requests).toFixed(2)}`,
          x.range.toFixed(1),
          x.txn.toFixed(1),
        ];
      }),
    ),
  );
  const p99base = percentile(base.burstHost.samples, 99);
  out.push(
    `\nBurst: every host at once sends RequestPool (${POOL_B}, new) then ${BURST_ADDRESSES} RequestAddress; target: all succeed, p99 at H=1000 at most 3x H=${base.hosts}'s.`,
  );
  out.push(
    table(
      [
        'H',
        'ok hosts',
        'failed pool',
        'failed addr',
        'pool p50',
        'pool p99',
        'addr p50',
        'addr p99',
        'host p50',
        'host p99',
        'p99 ratio',
        'Txn/host',
        'loop delay p99',
      ],
      runs.map((r) => [
        String(r.hosts),
        String(r.burstHost.samples.length),
        String(r.burstPool.errors),
        String(r.burstAddress.errors),
        ms(percentile(r.burstPool.samples, 50)),
        ms(percentile(r.burstPool.samples, 99)),
        ms(percentile(r.burstAddress.samples, 50)),
        ms(percentile(r.burstAddress.samples, 99)),
        ms(percentile(r.burstHost.samples, 50)),
        ms(percentile(r.burstHost.samples, 99)),
        `x${(percentile(r.burstHost.samples, 99) / p99base).toFixed(2)}`,
        (r.burstCounters.txn / r.hosts).toFixed(1),
        ms(r.burstLoopP99Ms),
      ]),
    ),
  );
  out.push(
    `\nChurn: every host releases its oldest address in pool A and requests one, in a loop, for ${f['churn-s']} s.`,
  );
  out.push(
    table(
      ['H', 'allocations/s', 'p50', 'p99', 'errors', 'etcd req/s', 'etcd bytes/s', 'bytes recv/Txn'],
      runs.map((r) => [
        String(r.hosts),
        (r.churn.samples.length / (r.churnMs / 1000)).toFixed(0),
        ms(percentile(r.churn.samples, 50)),
        ms(percentile(r.churn.samples, 99)),
        String(r.churn.errors),
        (r.churnCounters.requests / (r.churnMs / 1000)).toFixed(0),
        fmtBytes((r.churnCounters.sentBytes + r.churnCounters.receivedBytes) / (r.churnMs / 1000)),
        fmtBytes(r.churnCounters.receivedBytes / Math.max(1, r.churnCounters.txn)),
      ]),
    ),
  );
  if (memory) out.push(`\n${memory.summary}`);

  const last = runs[runs.length - 1] as RunResult;
  const points: IdlePoint[] = runs.map((r) => {
    const x = idleOf(r);
    return { hosts: r.hosts, held: r.held, bytes: x.bytes, requests: x.requests };
  });
  const fleet = extrapolate(
    {
      points,
      addressesPerHost: f.addresses,
      keys: last.afterSetup.keys,
      dbBytes: last.afterSetup.dbInUseBytes,
      held: last.held,
      bytesPerWrite: last.churnCounters.receivedBytes / Math.max(1, last.churnCounters.txn),
    },
    10_000,
    100,
  );
  const pct = (x: number, limit: number): string => `${((100 * x) / limit).toFixed(0)}% of it`;
  out.push(
    `\nOn paper, 10,000 idle hosts x 100 containers (per-host cost fitted as a + b x addresses held in the cluster over H = ${runs.map((r) => r.hosts).join(', ')}; a scaled by 100/${f.addresses}; keys and db size in proportion to H=${last.hosts}'s):`,
  );
  out.push(
    table(
      ['figure', 'fleet', "etcd's published limit", 'share'],
      [
        [
          'requests/s',
          fleet.requestsPerSecond.toFixed(0),
          '< 10,000 req/s for 1,000 clients (large cluster)',
          pct(fleet.requestsPerSecond, ETCD_LIMITS.requestsPerSecond),
        ],
        ['bytes/s', `${fmtBytes(fleet.bytesPerSecond)}/s`, '-', '-'],
        ['keys', fleet.keys.toExponential(2), '-', '-'],
        ['db size', fmtBytes(fleet.dbBytes), '8 GiB recommended maximum', pct(fleet.dbBytes, ETCD_LIMITS.dbBytes)],
        [
          'bytes received per Txn (churn)',
          fmtBytes(fleet.bytesPerWrite),
          '1.5 MiB request size',
          pct(fleet.bytesPerWrite, ETCD_LIMITS.requestBytes),
        ],
      ],
    ),
  );
  return out.join('\n');
}

async function main(): Promise<void> {
  const f = readFlags();
  tearDownOnSignals();
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const runs: RunResult[] = [];
  for (const h of f.hosts) {
    log(
      `H=${h}: ${Math.min(h, f.clients)} etcd client(s) shared by the hosts${h > f.clients ? ' (round robin)' : ' (one per host)'}`,
    );
    runs.push(await runHosts(h, f, log));
  }
  const memory = f['memory-addresses'] > 0 ? await measureHeldMemory(f['memory-addresses'], log) : undefined;
  log(`\n${report(f, runs, memory)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`scale bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
