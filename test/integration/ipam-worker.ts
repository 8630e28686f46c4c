/**
 * A separate allocator process for the integration tests: claims the pool as its own host, then requests
 * container addresses until the pool is exhausted, and prints what it got as one JSON line.
 * Usage: node ipam-worker.js <endpoints> <prefix> <hostId> <subnet> <subPool>
 */
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { silentLogger } from '../../src/observability/logger.js';
import { testEtcdClient } from '../harness/etcd-client.js';
import { FlatnetError } from '../../src/errors.js';

const [endpoints, prefix, hostId, subnet, subPool] = process.argv.slice(2) as [string, string, string, string, string];
const etcd = testEtcdClient(endpoints.split(','));
const driver = new EtcdIpamDriver({ etcd, prefix, hostId, logger: silentLogger() });
const got: string[] = [];
let end = '';
try {
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: subnet,
    subPool,
    options: {},
    v6: false,
  });
  for (;;) {
    const r = await Promise.allSettled(
      [1, 2, 3].map(() => driver.requestAddress({ poolId, address: '', kind: 'container' })),
    );
    for (const x of r) {
      if (x.status === 'fulfilled') got.push(x.value.address);
      else end = x.reason instanceof FlatnetError ? x.reason.kind : String(x.reason);
    }
    if (end) break;
  }
} finally {
  etcd.close();
}
process.stdout.write(`${JSON.stringify({ got, end })}\n`);
