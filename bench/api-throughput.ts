/**
 * Plugin API throughput: RequestAddress/ReleaseAddress over the Unix socket against a 3-member etcd, beside
 * raw etcd single-key create transactions at the same concurrency. Run: node dist/bench/api-throughput.js
 * (needs etcd; about 2 minutes). Prints a table; the ratio column is API allocations/s over raw etcd txns/s.
 *
 * This machine's CPU speed drifts (shared host: steal time comes and goes), so each concurrency runs ROUNDS
 * rounds of both measurements, in alternating order, and reports medians: the ratio is the median of the
 * per-round ratios, each taken from two measurements seconds apart (so it need not equal the ratio of the two
 * median rates); "per round" shows their spread.
 */
import { Agent } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { spawnFlatnetServer, waitAnswering } from '../test/harness/flatnet-server.js';
import { pluginCall, type PluginResult } from '../test/harness/plugin-client.js';

const POINT_MS = Number(process.env.BENCH_POINT_MS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = [1, 8, 32];

interface Point {
  ops: number;
  seconds: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function call(agent: Agent, socketPath: string, method: string, body: unknown): Promise<PluginResult> {
  return pluginCall(socketPath, method, body, agent);
}

/** Runs `op` in `clients` loops until the time is up (or `work` runs dry), timing each op. */
async function drive(clients: number, durationMs: number, op: (client: number) => Promise<boolean>): Promise<Point> {
  const latenciesMs: number[] = [];
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        if (!(await op(client))) return;
        latenciesMs.push(performance.now() - t0);
      }
    }),
  );
  return { ops: latenciesMs.length, seconds: (performance.now() - started) / 1000, latenciesMs: latenciesMs.sort((a, b) => a - b) };
}

const rate = (p: Point): number => p.ops / p.seconds;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Latency percentiles over every round's operations. */
function latencies(points: Point[]): { p50: string; p99: string } {
  const all = points.flatMap((p) => p.latenciesMs).sort((a, b) => a - b);
  return { p50: percentile(all, 50).toFixed(2), p99: percentile(all, 99).toFixed(2) };
}

/** CPU time the hypervisor gave to others, in percent of the machine, from /proc/stat. */
async function stealCounter(): Promise<{ steal: number; total: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  return { steal: fields[7] ?? 0, total: fields.reduce((a, b) => a + b, 0) };
}

async function main(): Promise<void> {
  const etcd = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-bench-'));
  const socket = join(dir, 'plugins', 'flatnet.sock');
  const config = join(dir, 'empty.conf');
  await writeFile(config, '');
  const prefix = `/flatnet-bench-${process.pid}`;
  const server = spawnFlatnetServer({
    socket,
    args: ['--config', config, '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-prefix', prefix, '--host-id', 'bench-host',
      '--state-dir', join(dir, 'state'), '--log-level', 'info'],
  });
  const client = new Etcd3({ hosts: etcd.endpoints });
  const rows: string[][] = [];
  let stealPercent = 0;
  try {
    await waitAnswering(server);
    const stealBefore = await stealCounter();
    let seq = 0;
    for (const clients of CONCURRENCY) {
      const agent = new Agent({ keepAlive: true, maxSockets: clients });
      const pool = await call(agent, socket, 'IpamDriver.RequestPool', {
        AddressSpace: 'FlatLocal', Pool: `10.${clients}.0.0/16`, SubPool: `10.${clients}.0.0/16`, Options: null, V6: false,
      });
      if (pool.status !== 200) throw new Error(`RequestPool failed: ${JSON.stringify(pool.json)}`);
      const poolId = String(pool.json.PoolID);
      let failures = 0;
      const allocs: Point[] = [];
      const releases: Point[] = [];
      const raws: Point[] = [];
      const allocate = async (held: string[]): Promise<Point> =>
        drive(clients, POINT_MS, async () => {
          const r = await call(agent, socket, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
          if (r.status !== 200) {
            failures++;
            return failures < 10;
          }
          held.push(String(r.json.Address).split('/')[0] as string);
          return true;
        });
      const release = async (held: string[]): Promise<Point> =>
        drive(clients, 60_000, async () => {
          const address = held.pop();
          if (address === undefined) return false;
          const r = await call(agent, socket, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: address });
          if (r.status !== 200) failures++;
          return true;
        });
      const raw = async (): Promise<Point> =>
        drive(clients, POINT_MS, async () => {
          const key = `${prefix}-raw/${clients}/${seq++}`;
          await client.if(key, 'Create', '==', 0).then(client.put(key).value('x')).commit();
          return true;
        });
      for (let round = 0; round < ROUNDS; round++) {
        const held: string[] = [];
        if (round % 2 === 0) {
          allocs.push(await allocate(held));
          raws.push(await raw());
        } else {
          raws.push(await raw());
          allocs.push(await allocate(held));
        }
        releases.push(await release(held));
      }
      await call(agent, socket, 'IpamDriver.ReleasePool', { PoolID: poolId });
      agent.destroy();

      const a = latencies(allocs);
      const e = latencies(raws);
      const ratios = allocs.map((p, i) => rate(p) / rate(raws[i] as Point));
      const ratio = median(ratios);
      rows.push([
        String(clients), median(allocs.map(rate)).toFixed(0), a.p50, a.p99, median(releases.map(rate)).toFixed(0),
        median(raws.map(rate)).toFixed(0), e.p50, e.p99, ratio.toFixed(2),
        `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`, String(failures),
      ]);
    }
    const stealAfter = await stealCounter();
    stealPercent = (100 * (stealAfter.steal - stealBefore.steal)) / Math.max(1, stealAfter.total - stealBefore.total);
  } finally {
    client.close();
    await server.stop();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const head = ['clients', 'alloc/s', 'p50 ms', 'p99 ms', 'release/s', 'etcd txn/s', 'p50 ms', 'p99 ms', 'ratio', 'per round', 'errors'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `RequestAddress over the plugin socket vs raw etcd create txns (3-member etcd; medians of ${ROUNDS} rounds of ${POINT_MS} ms per point; CPU steal ${stealPercent.toFixed(1)} %)\n`,
  );
  process.stdout.write(`${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
