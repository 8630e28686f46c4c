/** Prints the cost of `flatnet ip-range add` for a /8 and a /16: wall time and bytes stored under the prefix. */
import { performance } from 'node:perf_hooks';
import { EtcdIpamAdmin } from '../src/lab/etcd-ipam.js';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { silentLogger } from '../src/observability/logger.js';
import { testEtcdClient } from '../test/harness/etcd-client.js';
import { EtcdIo } from '../src/store/etcd-io.js';
import { prefixEnd } from '../src/store/keys.js';

const cluster = await startEtcdCluster({ members: 1 });
const etcd = testEtcdClient(cluster.endpoints);
try {
  const io = new EtcdIo(etcd, silentLogger());
  for (const [name, start, end] of [
    ['/8', '10.0.0.1/8', '10.255.255.254'],
    ['/16', '172.16.0.1/16', '172.16.255.254'],
  ] as const) {
    const prefix = `/bench-range-${name.slice(1)}`;
    const admin = new EtcdIpamAdmin({ etcd, prefix, logger: silentLogger() });
    const t0 = performance.now();
    await admin.addIpRange({ start, end });
    const ms = performance.now() - t0;
    const snap = await io.readRange(prefix, prefixEnd(prefix));
    let bytes = 0;
    for (const kv of snap.kvs.values()) bytes += kv.key.length + kv.value.length;
    process.stdout.write(
      `ip-range add ${name}: ${ms.toFixed(1)} ms, ${snap.kvs.size} keys, ${bytes} bytes under ${prefix}\n`,
    );
  }
} finally {
  etcd.close();
  await cluster.stop();
}
