/**
 * Memory of a real `flatnet server` while it hands out addresses: VmRSS (/proc/PID/status) at start, after
 * 10,000 and after 20,000 RequestAddress over the plugin socket on a /16, against a 3-member etcd.
 * Run: node dist/bench/memory.js (needs etcd; about a minute per variant).
 *
 * The addresses live in etcd, so holding them should cost the plugin next to nothing: the figure that matters is
 * the growth per 10,000 held addresses. "cold" is right after Activate; "start" after a warm-up of BENCH_WARMUP
 * (2,000) allocations released again (compiled code, heap at its working size, the pool empty again). BENCH_NODE_FLAGS lists variants of node flags for the server process,
 * separated by ';' (an empty entry is plain node; NAME=VALUE tokens are environment variables); each variant gets a fresh server, prefix and pool.
 * BENCH_HEAP_SNAPSHOTS=DIR makes the server write a heap snapshot (node --heapsnapshot-signal) at every point.
 */
import { Agent } from 'node:http';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { waitFor, type Started } from '../src/lab/processes.js';
import { pluginCall, type PluginResult } from '../test/harness/plugin-client.js';
import { memoryOf, SHIPPED_FLAGS, startServerProcess } from './flatnet-server-process.js';
const STEP = Number(process.env.BENCH_STEP ?? 10_000);
const CLIENTS = 8;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2000);
const VARIANTS = (process.env.BENCH_NODE_FLAGS ?? `;${SHIPPED_FLAGS}`).split(';').map((v) => v.trim());
const SNAPSHOT_DIR = process.env.BENCH_HEAP_SNAPSHOTS;

/** Keep-alive calls through the tests' plugin client (the way dockerd sends them). */
function call(agent: Agent, socketPath: string, method: string, body: unknown): Promise<PluginResult> {
  return pluginCall(socketPath, method, body, agent);
}

/** Lets the server settle (group-commit timers, GC after the burst) before a reading. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 1500));

async function snapshot(server: Started, dir: string, label: string): Promise<void> {
  if (SNAPSHOT_DIR === undefined) return;
  const before = new Set(await readdir(dir));
  server.child.kill('SIGUSR2');
  const file = await waitFor(
    'the heap snapshot',
    async () => {
      const fresh = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
      return fresh;
    },
    60_000,
  );
  // node writes the file in one go after the snapshot; wait for the size to stop changing.
  await new Promise((r) => setTimeout(r, 2000));
  await rename(join(dir, file), join(SNAPSHOT_DIR, `${label}.heapsnapshot`));
}

async function allocate(
  agent: Agent,
  socket: string,
  poolId: string,
  count: number,
  held: string[] = [],
): Promise<number> {
  let left = count;
  let failures = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (left > 0) {
        left--;
        const r = await call(agent, socket, 'IpamDriver.RequestAddress', {
          PoolID: poolId,
          Address: '',
          Options: null,
        });
        if (r.status === 200) held.push(String(r.json.Address).split('/')[0] as string);
        else if (++failures > 10) throw new Error(`RequestAddress failed: ${JSON.stringify(r.json)}`);
      }
    }),
  );
  return failures;
}

async function releaseAll(agent: Agent, socket: string, poolId: string, held: string[]): Promise<void> {
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let a = held.pop(); a !== undefined; a = held.pop()) {
        const r = await call(agent, socket, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: a });
        if (r.status !== 200) throw new Error(`ReleaseAddress failed: ${JSON.stringify(r.json)}`);
      }
    }),
  );
}

async function measure(endpoints: string[], dir: string, flags: string, index: number): Promise<string[]> {
  const config = join(dir, 'empty.conf');
  const tokens = flags === '' ? [] : flags.split(/\s+/);
  // NAME=VALUE tokens are environment variables for the server (e.g. MALLOC_ARENA_MAX=2), the rest node flags.
  const envVars = Object.fromEntries(
    tokens.filter((t) => /^[A-Z_]+=/.test(t)).map((t) => t.split('=', 2) as [string, string]),
  );
  const nodeFlags = tokens.filter((t) => !/^[A-Z_]+=/.test(t));
  if (SNAPSHOT_DIR !== undefined) nodeFlags.push('--heapsnapshot-signal=SIGUSR2');
  const { server, socket } = startServerProcess({
    endpoints,
    prefix: `/flatnet-membench-${process.pid}-${index}`,
    hostId: 'bench-host',
    dir: join(dir, `v${index}`),
    config,
    cwd: dir,
    nodeFlags,
    env: envVars,
  });
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  try {
    await waitFor(
      'the plugin socket',
      async () => {
        try {
          return (await call(agent, socket, 'Plugin.Activate', {})).status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      15_000,
    );
    const pool = await call(agent, socket, 'IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: '10.77.0.0/16',
      SubPool: '10.77.0.0/16',
      Options: null,
      V6: false,
    });
    if (pool.status !== 200) throw new Error(`RequestPool failed: ${JSON.stringify(pool.json)}`);
    const poolId = String(pool.json.PoolID);
    await settle();
    const cold = await memoryOf(server.pid);
    // Warm-up: WARMUP allocations released again, so the pool is empty and the code is compiled ("start").
    const warm: string[] = [];
    await allocate(agent, socket, poolId, WARMUP, warm);
    await releaseAll(agent, socket, poolId, warm);
    await settle();
    const start = await memoryOf(server.pid);
    await snapshot(server, dir, `v${index}-0`);
    let failures = await allocate(agent, socket, poolId, STEP);
    await settle();
    const first = await memoryOf(server.pid);
    await snapshot(server, dir, `v${index}-1`);
    failures += await allocate(agent, socket, poolId, STEP);
    await settle();
    const second = await memoryOf(server.pid);
    await snapshot(server, dir, `v${index}-2`);
    const perStep = (second.rssMiB - start.rssMiB) / 2;
    return [
      flags === '' ? '(none)' : flags,
      cold.rssMiB.toFixed(1),
      start.rssMiB.toFixed(1),
      first.rssMiB.toFixed(1),
      second.rssMiB.toFixed(1),
      perStep.toFixed(1),
      (first.rssMiB - start.rssMiB).toFixed(1),
      (second.rssMiB / start.rssMiB).toFixed(2),
      `${start.anonMiB.toFixed(0)}/${first.anonMiB.toFixed(0)}/${second.anonMiB.toFixed(0)}`,
      String(failures),
    ];
  } finally {
    agent.destroy();
    await server.stop();
  }
}

async function main(): Promise<void> {
  const etcd = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-membench-'));
  await writeFile(join(dir, 'empty.conf'), '');
  const rows: string[][] = [];
  try {
    for (const [i, flags] of VARIANTS.entries()) rows.push(await measure(etcd.endpoints, dir, flags, i));
  } finally {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const k = `${STEP / 1000}k`;
  const head = [
    'node flags',
    'RSS cold MiB',
    `start (warm)`,
    `after ${k}`,
    `after ${(2 * STEP) / 1000}k`,
    `growth/${k} MiB`,
    `first ${k}`,
    `ratio ${(2 * STEP) / 1000}k/start`,
    'RssAnon start/1/2',
    'errors',
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `flatnet server VmRSS (/proc) while holding addresses (RequestAddress over the socket, ${CLIENTS} clients, /16 pool, 3-member etcd; growth/${k} = (after ${(2 * STEP) / 1000}k - start) / 2)\n`,
  );
  process.stdout.write(`${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
