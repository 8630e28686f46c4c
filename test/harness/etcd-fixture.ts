import { after, before } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { testEtcdClient } from './etcd-client.js';

/** A real etcd cluster for one test file, with flatnet's client on it; both exist only inside its tests. */
export interface EtcdFixture {
  readonly cluster: EtcdCluster;
  readonly etcd: Etcd3;
}

/**
 * Starts the cluster in the file's before() and stops it (client first) in after(); nothing starts when `skip`
 * says the tier or the machine has no etcd. `timeoutMs` is the client's deadline. node:test runs after() hooks in
 * the order they were registered: call this below a file's own after() when that one still needs etcd.
 */
export function etcdFixture(skip: string | false, o: { members?: number; timeoutMs?: number } = {}): EtcdFixture {
  let cluster: EtcdCluster | undefined;
  let etcd: Etcd3 | undefined;
  before(async () => {
    if (skip) return;
    cluster = await startEtcdCluster({ members: o.members ?? 1 });
    etcd = testEtcdClient(cluster.endpoints, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
  });
  after(async () => {
    etcd?.close();
    await cluster?.stop();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('etcdFixture: used outside its tests or while skipped');
    return v;
  };
  return {
    get cluster() {
      return started(cluster);
    },
    get etcd() {
      return started(etcd);
    },
  };
}
