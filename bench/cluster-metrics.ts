/**
 * Prints what one scrape of the cluster gauges costs over a real etcd as a pool fills: the cheap tier (configs,
 * count-only reads, cooling and host keys) against the scan of every address record, and their ratio.
 *   node dist/bench/cluster-metrics.js [ADDRESSES...]   (default 1000 10000)
 */
import { performance } from 'node:perf_hooks';
import { COOLING_OFF } from '../src/ipam/services/allocation-service.js';
import { ClusterCensus } from '../src/ipam/services/cluster-census.js';
import { IpamAdminService } from '../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../src/ipam/services/driver-service.js';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { silentLogger } from '../src/observability/logger.js';
import { EtcdStores } from '../src/store/etcd-stores.js';
import { testEtcdClient } from '../test/harness/etcd-client.js';

const sizes = process.argv.slice(2).map(Number);
const cluster = await startEtcdCluster({ members: 1 });
const etcd = testEtcdClient(cluster.endpoints);
const median = async (n: number, fn: () => Promise<unknown>): Promise<number> => {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(n / 2)] as number;
};
try {
  for (const n of sizes.length ? sizes : [1000, 10_000]) {
    const prefix = `/bench-census-${n}`;
    const stores = new EtcdStores(etcd, prefix, silentLogger());
    await new IpamAdminService(stores.ipam, silentLogger()).addIpRange({ start: '10.0.0.1/16', end: '10.0.255.254' });
    // Ten hosts share the pool, as a cluster would.
    const hosts = Array.from({ length: 10 }, (_, i) => new IpamDriverService(stores.ipam, `h${i}`, silentLogger()));
    const { poolId } = await (hosts[0] as IpamDriverService).requestPool({
      addressSpace: 'FlatLocal',
      pool: '10.0.0.0/16',
      subPool: '',
      options: {},
      v6: false,
    });
    for (let done = 0; done < n; done += 500)
      await Promise.all(
        Array.from({ length: Math.min(500, n - done) }, (_, i) =>
          (hosts[i % hosts.length] as IpamDriverService).requestAddress({ poolId, address: '', kind: 'container' }),
        ),
      );
    const census = new ClusterCensus(stores.ipam, stores.hosts, COOLING_OFF);
    // The fill's background work (txn markers, group commits) settles first.
    await new Promise((r) => setTimeout(r, 2000));
    const cheap = await median(9, () => Promise.all([census.pools(), census.hosts()]));
    const scan = await median(5, () => census.holders());
    process.stdout.write(
      `${n} addresses: cheap tier ${cheap.toFixed(1)} ms, scan ${scan.toFixed(1)} ms, ratio scan/cheap ${(scan / cheap).toFixed(1)}\n`,
    );
  }
} finally {
  etcd.close();
  await cluster.stop();
}
