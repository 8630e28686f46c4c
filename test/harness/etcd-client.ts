import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../../src/store/etcd-client.js';

/** flatnet's own etcd client (its fault handling, its txn-marker prefix) on a test cluster's endpoints. */
export function testEtcdClient(endpoints: string[], o: { prefix?: string; timeoutMs?: number } = {}): Etcd3 {
  return createEtcdClient({
    etcdEndpoints: endpoints,
    etcdPrefix: o.prefix ?? '/flatnet',
    etcdTimeoutMs: o.timeoutMs ?? 5000,
  });
}
