/**
 * Plugin API throughput: RequestAddress/ReleaseAddress over the Unix socket against a 3-member etcd, beside
 * raw etcd single-key create transactions at the same concurrency. Run: node dist/bench/api-throughput.js
 * (needs etcd; about 3 minutes). Prints a table; the ratio column is API allocations/s over raw etcd txns/s.
 *
 * What express costs is measured in the same run: the real `flatnet server` (express), and bench-only servers
 * with the same calls and drivers (bench/bare-plugin-server.ts): "classes", express on a node:http server made
 * with httpOptionsFor(app), and "bare", a node:http listener without express. They take turns, and the
 * server CPU per allocation (utime+stime from /proc over each point, divided by its calls) is reported for both.
 * BENCH_SERVER_NODE_OPTIONS is given to both servers as NODE_OPTIONS (to price memory flags, bench/memory.ts).
 *
 * This machine's CPU speed drifts (shared host: steal time comes and goes), so each concurrency runs ROUNDS
 * rounds of the three measurements, each round starting with another, and reports medians: a ratio is the
 * median of the per-round ratios, each taken from measurements seconds apart (so it need not equal the ratio
 * of the two median rates); "per round" shows their spread.
 */
import { Agent } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { run, startProcess, waitFor, type Started } from '../src/lab/processes.js';
import { pluginCall, type PluginResult } from '../test/harness/plugin-client.js';

const POINT_MS = Number(process.env.BENCH_POINT_MS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = [1, 8, 32];
const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = join(HERE, '..', 'src', 'cli', 'main.js');
const BARE = join(HERE, 'bare-plugin-server.js');

interface Point {
  ops: number;
  seconds: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Keep-alive calls through the tests' plugin client (the way dockerd sends them). */
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
  return {
    ops: latenciesMs.length,
    seconds: (performance.now() - started) / 1000,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
  };
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

/** utime + stime of a process, in seconds, from /proc/PID/stat. */
async function cpuSeconds(pid: number, ticksPerSecond: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** The plugin servers under test: the real `flatnet server` (express), express on httpOptionsFor, bare node:http (bench only). */
type Kind = 'express' | 'classes' | 'bare';

interface Served {
  kind: Kind;
  socket: string;
  process: Started;
}

async function main(): Promise<void> {
  const etcd = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-bench-'));
  const config = join(dir, 'empty.conf');
  await writeFile(config, '');
  const prefix = `/flatnet-bench-${process.pid}`;
  const ticksPerSecond = Number((await run('getconf', ['CLK_TCK'])).trim()) || 100;
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (process.env.BENCH_SERVER_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_SERVER_NODE_OPTIONS;
  const stdio = ['ignore', 'ignore', 'ignore'] as const;
  const servers: Served[] = [];
  const expressSocket = join(dir, 'plugins', 'flatnet.sock');
  servers.push({
    kind: 'express',
    socket: expressSocket,
    process: startProcess(
      process.execPath,
      [
        CLI,
        'server',
        '--config',
        config,
        '--socket',
        expressSocket,
        '--etcd-endpoints',
        etcd.endpoints.join(','),
        '--etcd-prefix',
        `${prefix}-express`,
        '--host-id',
        'bench-host',
        '--state-dir',
        join(dir, 'state-express'),
        '--log-level',
        'info',
      ],
      { stdio: [...stdio], env },
    ),
  });
  for (const [kind, mode] of [
    ['classes', 'express-classes'],
    ['bare', 'bare'],
  ] as const) {
    const socket = join(dir, 'plugins', `${kind}.sock`);
    servers.push({
      kind,
      socket,
      process: startProcess(
        process.execPath,
        [BARE, mode, socket, etcd.endpoints.join(','), `${prefix}-${kind}`, 'bench-host', join(dir, `state-${kind}`)],
        { stdio: [...stdio], env },
      ),
    });
  }
  const client = new Etcd3({ hosts: etcd.endpoints });
  const rows: string[][] = [];
  let stealPercent = 0;
  try {
    for (const s of servers) {
      const probe = new Agent({ keepAlive: true });
      await waitFor(
        `the ${s.kind} plugin socket`,
        async () => {
          try {
            return (await call(probe, s.socket, 'Plugin.Activate', {})).status === 200 ? true : undefined;
          } catch {
            return undefined;
          }
        },
        15_000,
      );
      probe.destroy();
    }
    const stealBefore = await stealCounter();
    let seq = 0;
    for (const clients of CONCURRENCY) {
      let failures = 0;
      const allocs: Record<Kind, Point[]> = { express: [], classes: [], bare: [] };
      const cpuPerCall: Record<Kind, number[]> = { express: [], classes: [], bare: [] };
      const releases: Record<Kind, Point[]> = { express: [], classes: [], bare: [] };
      const raws: Point[] = [];
      const sides = await Promise.all(
        servers.map(async (s, i) => {
          const agent = new Agent({ keepAlive: true, maxSockets: clients });
          const subnet = `10.${clients + 100 * i}.0.0/16`;
          const pool = await call(agent, s.socket, 'IpamDriver.RequestPool', {
            AddressSpace: 'FlatLocal',
            Pool: subnet,
            SubPool: subnet,
            Options: null,
            V6: false,
          });
          if (pool.status !== 200) throw new Error(`RequestPool on ${s.kind} failed: ${JSON.stringify(pool.json)}`);
          return { ...s, agent, poolId: String(pool.json.PoolID) };
        }),
      );
      type Side = (typeof sides)[number];
      const allocate = async (side: Side, held: string[]): Promise<void> => {
        const cpu0 = await cpuSeconds(side.process.pid, ticksPerSecond);
        const point = await drive(clients, POINT_MS, async () => {
          const r = await call(side.agent, side.socket, 'IpamDriver.RequestAddress', {
            PoolID: side.poolId,
            Address: '',
            Options: null,
          });
          if (r.status !== 200) {
            failures++;
            return failures < 10;
          }
          held.push(String(r.json.Address).split('/')[0] as string);
          return true;
        });
        const cpu1 = await cpuSeconds(side.process.pid, ticksPerSecond);
        allocs[side.kind].push(point);
        cpuPerCall[side.kind].push((1e6 * (cpu1 - cpu0)) / Math.max(1, point.ops));
      };
      const release = async (side: Side, held: string[]): Promise<void> => {
        releases[side.kind].push(
          await drive(clients, 60_000, async () => {
            const address = held.pop();
            if (address === undefined) return false;
            const r = await call(side.agent, side.socket, 'IpamDriver.ReleaseAddress', {
              PoolID: side.poolId,
              Address: address,
            });
            if (r.status !== 200) failures++;
            return true;
          }),
        );
      };
      const raw = async (): Promise<void> => {
        raws.push(
          await drive(clients, POINT_MS, async () => {
            const key = `${prefix}-raw/${clients}/${seq++}`;
            await client.if(key, 'Create', '==', 0).then(client.put(key).value('x')).commit();
            return true;
          }),
        );
      };
      for (let round = 0; round < ROUNDS; round++) {
        const held: Record<Kind, string[]> = { express: [], classes: [], bare: [] };
        const steps: (() => Promise<void>)[] = [...sides.map((side) => () => allocate(side, held[side.kind])), raw];
        // Each round starts with another of the three measurements, so a drift of the machine hits all alike.
        for (let i = 0; i < steps.length; i++) await (steps[(round + i) % steps.length] as () => Promise<void>)();
        for (const side of sides) await release(side, held[side.kind]);
      }
      for (const side of sides) {
        await call(side.agent, side.socket, 'IpamDriver.ReleasePool', { PoolID: side.poolId });
        side.agent.destroy();
      }

      const ratios = (kind: Kind): number[] => allocs[kind].map((p, i) => rate(p) / rate(raws[i] as Point));
      const a = latencies(allocs.express);
      const e = latencies(raws);
      const ex = ratios('express');
      rows.push([
        String(clients),
        median(allocs.express.map(rate)).toFixed(0),
        a.p50,
        a.p99,
        median(releases.express.map(rate)).toFixed(0),
        median(allocs.bare.map(rate)).toFixed(0),
        median(raws.map(rate)).toFixed(0),
        e.p50,
        e.p99,
        median(ex).toFixed(2),
        `${Math.min(...ex).toFixed(2)}–${Math.max(...ex).toFixed(2)}`,
        median(ratios('classes')).toFixed(2),
        median(ratios('bare')).toFixed(2),
        median(cpuPerCall.express).toFixed(0),
        median(cpuPerCall.classes).toFixed(0),
        median(cpuPerCall.bare).toFixed(0),
        String(failures),
      ]);
    }
    const stealAfter = await stealCounter();
    stealPercent = (100 * (stealAfter.steal - stealBefore.steal)) / Math.max(1, stealAfter.total - stealBefore.total);
  } finally {
    client.close();
    for (const s of servers) await s.process.stop();
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const head = [
    'clients',
    'alloc/s',
    'p50 ms',
    'p99 ms',
    'release/s',
    'bare alloc/s',
    'etcd txn/s',
    'p50 ms',
    'p99 ms',
    'ratio',
    'per round',
    'classes ratio',
    'bare ratio',
    'server µs/call',
    'classes µs/call',
    'bare µs/call',
    'errors',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `RequestAddress over the plugin socket (flatnet server, express) vs raw etcd create txns; the same calls on express with httpOptionsFor (classes) and on a bare node:http listener (bench only); ` +
      `3-member etcd; medians of ${ROUNDS} interleaved rounds of ${POINT_MS} ms per point; server CPU per call from /proc; CPU steal ${stealPercent.toFixed(1)} %${env.NODE_OPTIONS ? `; servers' NODE_OPTIONS ${env.NODE_OPTIONS}` : ''}\n`,
  );
  process.stdout.write(`${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
