/**
 * Prints allocation latency (p50 of sequential RequestAddress) in a /16 pool that is empty vs one with 10,000
 * cooling addresses (allocated and released through the driver, cooldown 300 s), same run, same host id: the
 * host's start block lies inside the cooling region, so the fresh driver must get past it. Target ratio <= 1.2.
 */
import { performance } from 'node:perf_hooks';
import { EtcdIpamAdmin } from '../src/lab/etcd-ipam.js';
import { IpamDriverService } from '../src/ipam/services/driver-service.js';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { silentLogger } from '../src/observability/logger.js';
import { EtcdStores } from '../src/store/etcd-stores.js';
import { testEtcdClient } from '../test/harness/etcd-client.js';

const COOLING = 10_000;
const SAMPLES = 300;
const cluster = await startEtcdCluster({ members: 1 });
const etcd = testEtcdClient(cluster.endpoints);
const logger = silentLogger();
const cooling = { policy: { cooldownSec: 300, stickySec: 86_400 }, now: () => Math.floor(Date.now() / 1000) };
const subnet = '10.77.0.0/16';

/** A driver as a freshly started server has it: its own stores, no cursor, no cached block. */
let poolId = '';
async function freshDriver(prefix: string, claim: boolean): Promise<IpamDriverService> {
  const d = new IpamDriverService(new EtcdStores(etcd, prefix, logger).ipam, 'bench', logger, { cooling });
  // The host claims the pool once (Docker's network create); a restarted server finds the claim in etcd.
  if (claim)
    poolId = (await d.requestPool({ addressSpace: 'FlatLocal', pool: subnet, subPool: '', options: {}, v6: false }))
      .poolId;
  return d;
}

/** The pool set up (ip range, the host's claim, `prepare`), then a fresh driver and its first allocation's time. */
async function pool(
  prefix: string,
  prepare?: (d: IpamDriverService) => Promise<void>,
): Promise<{ d: IpamDriverService; first: number }> {
  await new EtcdIpamAdmin({ etcd, prefix, logger }).addIpRange({ start: '10.77.0.1/16', end: '10.77.255.254' });
  const claimer = await freshDriver(prefix, true);
  if (prepare) await prepare(claimer);
  const d = await freshDriver(prefix, false);
  const t0 = performance.now();
  await d.requestAddress({ poolId, address: '', kind: 'container' });
  return { d, first: performance.now() - t0 };
}

async function timed(d: IpamDriverService): Promise<number> {
  const t = performance.now();
  await d.requestAddress({ poolId, address: '', kind: 'container' });
  return performance.now() - t;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** 10,000 addresses handed out and released again (in concurrent waves, as many containers stopping would). */
async function coolTenThousand(d: IpamDriverService): Promise<void> {
  const got: string[] = [];
  for (let i = 0; i < COOLING; i += 1000) {
    const wave = await Promise.all(
      Array.from({ length: Math.min(1000, COOLING - i) }, () =>
        d.requestAddress({ poolId, address: '', kind: 'container' }),
      ),
    );
    got.push(...wave.map((w) => w.address.split('/')[0] as string));
  }
  for (let i = 0; i < got.length; i += 1000)
    await Promise.all(got.slice(i, i + 1000).map((a) => d.releaseAddress(poolId, a)));
}

try {
  const r = (x: number) => x.toFixed(2);
  const t0 = performance.now();
  const emptyPool = await pool('/bench-cool-empty');
  const cooledPool = await pool('/bench-cool-10k', coolTenThousand);
  // Interleaved samples: drift of the shared machine hits both alike.
  const te: number[] = [];
  const tc: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    te.push(await timed(emptyPool.d));
    tc.push(await timed(cooledPool.d));
  }
  const empty = { p50: median(te), first: emptyPool.first };
  const cooled = { p50: median(tc), first: cooledPool.first };
  const released = await new EtcdIpamAdmin({ etcd, prefix: '/bench-cool-10k', logger }).listReleased();
  process.stdout.write(
    `allocation p50 (/16, cooldown 300 s): empty ${r(empty.p50)} ms, with ${released.length} cooling ${r(cooled.p50)} ms, ratio ${(cooled.p50 / empty.p50).toFixed(2)}\n` +
      `first allocation of a fresh server: empty ${r(empty.first)} ms, cooling ${r(cooled.first)} ms (total run ${((performance.now() - t0) / 1000).toFixed(1)} s)\n`,
  );
} finally {
  etcd.close();
  await cluster.stop();
}
