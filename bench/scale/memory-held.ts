import { Agent } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startEtcdCluster } from '../../src/lab/etcd-cluster.js';
import { scrapeCluster } from './etcd-metrics.js';
import { onTeardown } from './teardown.js';
import { waitFor } from '../../src/lab/processes.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { createEtcdClient } from '../../src/store/etcd-client.js';
import { pluginCall } from '../../test/harness/plugin-client.js';
import { type Memory, memoryOf, SHIPPED_FLAGS, startServerProcess } from '../flatnet-server-process.js';

const POOL = '10.32.0.0/11';
/**
 * Other hosts fill the pool, each a batch of this many requests at a time (one group-committed txn). Below the
 * driver's batch of 100: a batch whose commit loses a race re-reads its block with every address of the batch in
 * one read, and etcd refuses a txn of more than 128 operations.
 */
const FILLERS = 16;
const BATCH = 60;
/** What the measured server holds itself. */
const OWN = 100;
const RECONCILE_MS = 5000;
/** Long enough for several reconciles and for a slow growth to show. */
const WATCH_MS = 90_000;

export interface HeldMemory {
  summary: string;
}

/**
 * RSS of a real `flatnet server` (the shipped node flags) whose pool holds `total` addresses, nearly all of other
 * hosts: filled through the IPAM services (so the layout is whatever the store writes), then the server claims
 * the pool, takes OWN addresses and reconciles every 5 s while VmRSS is watched for 90 s.
 */
export async function measureHeldMemory(total: number, log: (line: string) => void): Promise<HeldMemory> {
  const cluster = await startEtcdCluster({ members: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-scale-mem-'));
  const prefix = '/flatnet-scale-mem';
  const etcd = createEtcdClient({ etcdEndpoints: cluster.endpoints, etcdPrefix: prefix, etcdTimeoutMs: 30_000 });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  let server: ReturnType<typeof startServerProcess>['server'] | undefined;
  const tearDown = onTeardown(async () => {
    agent.destroy();
    await server?.stop();
    etcd.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  });
  try {
    // As on a fresh cluster whose first server ran before the pool was filled: the host index is complete, so the
    // measured server reads its own index and not, as an upgrade's backfill does, every record of the pool.
    const index = new EtcdStores(etcd, prefix, silentLogger()).ipam.hostIndex;
    for (let step = 0; (await index.fillStep()) !== 'complete'; step++)
      if (step > 10) throw new Error('the host index of the empty cluster did not complete');
    const t0 = performance.now();
    let left = total - OWN;
    let done = 0;
    let nextLog = 100_000;
    await Promise.all(
      Array.from({ length: FILLERS }, async (_, i) => {
        const d = new EtcdIpamDriver({ etcd, prefix, hostId: `filler-${i}`, logger: silentLogger() });
        const { poolId } = await d.requestPool({
          addressSpace: 'FlatLocal',
          pool: POOL,
          subPool: POOL,
          options: {},
          v6: false,
        });
        while (left > 0) {
          const n = Math.min(BATCH, left);
          left -= n;
          await Promise.all(
            Array.from({ length: n }, () => d.requestAddress({ poolId, address: '', kind: 'container' })),
          );
          done += n;
          if (done >= nextLog) {
            log(`  memory: ${done} addresses held after ${((performance.now() - t0) / 1000).toFixed(0)} s`);
            nextLog += 100_000;
          }
        }
      }),
    );
    const fillS = (performance.now() - t0) / 1000;
    const config = join(dir, 'empty.conf');
    await writeFile(config, '');
    // A flatnet server elsewhere in this network namespace (another test on the machine) holds the namespace lock
    // and makes ours exit at once (code 2): the start is tried again until that one is gone.
    let started: ReturnType<typeof startServerProcess> | undefined;
    let exit: string | undefined;
    for (let attempt = 1; started === undefined; attempt++) {
      const s = startServerProcess({
        endpoints: cluster.endpoints,
        prefix,
        hostId: 'bench-host',
        dir: join(dir, `server-${attempt}`),
        config,
        cwd: dir,
        nodeFlags: SHIPPED_FLAGS.split(' '),
        serverArgs: ['--reconcile-interval-ms', String(RECONCILE_MS)],
      });
      server = s.server;
      exit = undefined;
      server.child.once('exit', (code, signal) => (exit = `exited (${signal ?? `code ${code}`})`));
      const serving = await waitFor(
        'the plugin socket',
        async () => {
          if (exit) return false;
          try {
            return (await pluginCall(s.socket, 'Plugin.Activate', {}, agent)).status === 200 ? true : undefined;
          } catch {
            return undefined;
          }
        },
        30_000,
      );
      if (serving) started = s;
      else if (attempt >= 40) throw new Error(`flatnet server ${exit ?? 'did not serve'} at each of 40 starts`);
      else {
        log(`  memory: flatnet server ${exit ?? 'did not serve'} before serving; starting it again in 5 s`);
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
    const { socket } = started;
    const { pid } = started.server;
    const call = (method: string, body: unknown) => pluginCall(socket, method, body, agent);
    const pool = await call('IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: POOL,
      SubPool: POOL,
      Options: null,
      V6: false,
    });
    if (pool.status !== 200) throw new Error(`RequestPool failed: ${JSON.stringify(pool.json)}`);
    for (let i = 0; i < OWN; i++) {
      const r = await call('IpamDriver.RequestAddress', {
        PoolID: String(pool.json.PoolID),
        Address: '',
        Options: null,
      });
      if (r.status !== 200) throw new Error(`RequestAddress failed: ${JSON.stringify(r.json)}`);
    }
    const start = await memoryOf(pid);
    const urls = cluster.members.map((m) => m.clientUrl);
    const before = await scrapeCluster(urls);
    let last: Memory = start;
    const until = performance.now() + WATCH_MS;
    while (performance.now() < until && exit === undefined) {
      await new Promise((r) => setTimeout(r, 500));
      if (exit === undefined) last = await memoryOf(pid).catch(() => last);
    }
    // Nothing else talks to etcd meanwhile: what it sent is what the server read while watched.
    const after = await scrapeCluster(urls);
    const read = after.sentBytes - before.sentBytes;
    const ranges = after.range - before.range;
    const summary = `Server memory with ${total.toLocaleString('en')} addresses held in its pool (${POOL}, filled by ${FILLERS} other hosts in ${fillS.toFixed(0)} s; node ${SHIPPED_FLAGS}; reconcile every ${RECONCILE_MS / 1000} s, watched ${WATCH_MS / 1000} s, in which etcd sent it ${(read / 1e6).toFixed(0)} MB in ${ranges} Range calls): VmRSS after its ${OWN} addresses ${start.rssMiB.toFixed(0)} MiB, peak (VmHWM) ${last.peakMiB.toFixed(0)} MiB, last ${last.rssMiB.toFixed(0)} MiB${exit ? `; the server ${exit}` : ''}.`;
    log(
      `  memory: ${total} addresses held, filled in ${fillS.toFixed(0)} s; server peak ${last.peakMiB.toFixed(0)} MiB${exit ? `, ${exit}` : ''}`,
    );
    return { summary };
  } finally {
    await tearDown();
  }
}
