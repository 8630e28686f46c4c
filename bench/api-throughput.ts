/**
 * Plugin API throughput: RequestAddress/ReleaseAddress over the Unix socket against a 3-member etcd, beside
 * raw etcd single-key create transactions at the same concurrency. Run: node dist/bench/api-throughput.js
 * (needs etcd; about 40 s). Prints a table; the ratio column is API allocations/s over raw etcd txns/s.
 */
import { Agent, request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { startProcess, waitFor } from '../src/lab/processes.js';

const POINT_MS = Number(process.env.BENCH_POINT_MS ?? 3000);
const CONCURRENCY = [1, 8, 32];
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

interface Point {
  ops: number;
  seconds: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function call(agent: Agent, socketPath: string, method: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const text = JSON.stringify(body) + '\n';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { agent, socketPath, method: 'POST', path: `/${method}`, headers: { Host: '', 'Content-Length': Buffer.byteLength(text) } },
      (res) => {
        let out = '';
        res.on('data', (d: Buffer) => (out += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(out) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
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

function fmt(p: Point): { rate: number; p50: string; p99: string } {
  return { rate: p.ops / p.seconds, p50: percentile(p.latenciesMs, 50).toFixed(2), p99: percentile(p.latenciesMs, 99).toFixed(2) };
}

async function main(): Promise<void> {
  const etcd = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-bench-'));
  const socket = join(dir, 'plugins', 'flatnet.sock');
  const config = join(dir, 'empty.conf');
  await writeFile(config, '');
  const prefix = `/flatnet-bench-${process.pid}`;
  const server = startProcess(process.execPath, [
    CLI, 'server', '--config', config, '--socket', socket, '--etcd-endpoints', etcd.endpoints.join(','),
    '--etcd-prefix', prefix, '--host-id', 'bench-host', '--state-dir', join(dir, 'state'), '--log-level', 'info',
  ], { stdio: ['ignore', 'ignore', 'ignore'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const client = new Etcd3({ hosts: etcd.endpoints });
  const rows: string[][] = [];
  try {
    const probe = new Agent({ keepAlive: true });
    await waitFor('the plugin socket', async () => ((await call(probe, socket, 'Plugin.Activate', {})).status === 200 ? true : undefined), 15_000);
    probe.destroy();
    for (const clients of CONCURRENCY) {
      const agent = new Agent({ keepAlive: true, maxSockets: clients });
      const pool = await call(agent, socket, 'IpamDriver.RequestPool', {
        AddressSpace: 'FlatLocal', Pool: `10.${clients}.0.0/16`, SubPool: `10.${clients}.128.0/17`, Options: null, V6: false,
      });
      if (pool.status !== 200) throw new Error(`RequestPool failed: ${JSON.stringify(pool.json)}`);
      const poolId = String(pool.json.PoolID);
      const held: string[] = [];
      let failures = 0;
      const alloc = await drive(clients, POINT_MS, async () => {
        const r = await call(agent, socket, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
        if (r.status !== 200) {
          failures++;
          return failures < 10;
        }
        held.push(String(r.json.Address).split('/')[0] as string);
        return true;
      });
      const release = await drive(clients, 60_000, async () => {
        const address = held.pop();
        if (address === undefined) return false;
        await call(agent, socket, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: address });
        return true;
      });
      await call(agent, socket, 'IpamDriver.ReleasePool', { PoolID: poolId });
      agent.destroy();

      let seq = 0;
      const raw = await drive(clients, POINT_MS, async () => {
        const key = `${prefix}-raw/${clients}/${seq++}`;
        await client.if(key, 'Create', '==', 0).then(client.put(key).value('x')).commit();
        return true;
      });
      const a = fmt(alloc);
      const r = fmt(release);
      const e = fmt(raw);
      rows.push([
        String(clients), a.rate.toFixed(0), a.p50, a.p99, r.rate.toFixed(0), e.rate.toFixed(0), e.p50, e.p99,
        (a.rate / e.rate).toFixed(2), String(failures),
      ]);
    }
  } finally {
    client.close();
    await server.stop();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const head = ['clients', 'alloc/s', 'p50 ms', 'p99 ms', 'release/s', 'etcd txn/s', 'p50 ms', 'p99 ms', 'ratio', 'errors'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`RequestAddress over the plugin socket vs raw etcd create txns (3-member etcd, ${POINT_MS} ms per point)\n`);
  process.stdout.write(`${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
