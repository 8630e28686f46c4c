import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createEtcdClient } from '../../src/store/etcd-client.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { missing } from '../harness/requirements.js';

const skip = missing('etcd');
let cluster: EtcdCluster | undefined;
let etcd: Etcd3 | undefined;
const prefix = `/hr-${Math.random().toString(36).slice(2, 8)}`;
const registry = (client: Etcd3) => new EtcdStores(client, prefix, silentLogger()).hosts;

before(async () => {
  if (skip) return;
  cluster = await startEtcdCluster();
  etcd = createEtcdClient({ etcdEndpoints: cluster.endpoints, etcdPrefix: prefix, etcdTimeoutMs: 3000 });
});
after(async () => {
  etcd?.close();
  await cluster?.stop();
});

test('a registered host is alive; after stop it is listed as known but down', { skip }, async () => {
  const client = etcd as Etcd3;
  const reg = registry(client).start({ hostId: 'h1', logger: silentLogger(), version: '9.9.9' });
  await reg.ready;
  const other = registry(client).start({ hostId: 'h2', logger: silentLogger() });
  await other.ready;

  let hosts = await registry(client).list();
  assert.deepEqual(
    hosts.map((h) => [h.hostId, h.alive]),
    [
      ['h1', true],
      ['h2', true],
    ],
  );
  assert.equal(hosts[0]?.version, '9.9.9');

  await reg.stop();
  hosts = await registry(client).list();
  assert.deepEqual(
    hosts.map((h) => [h.hostId, h.alive]),
    [
      ['h2', true],
      ['h1', false],
    ],
  );
  const down = hosts.find((h) => h.hostId === 'h1');
  assert.ok(down && !Number.isNaN(Date.parse(down.lastSeen)));
  // the live key went with the lease; the durable record stayed
  assert.equal(await client.get(`${prefix}/hosts/h1`).string(), null);
  assert.notEqual(await client.get(`${prefix}/known-hosts/h1`).string(), null);
  await other.stop();
});

test('a host whose lease is revoked behind its back registers again', { skip }, async () => {
  const client = etcd as Etcd3;
  const reg = registry(client).start({ hostId: 'h3', logger: silentLogger(), ttlSeconds: 5 });
  try {
    await reg.ready;
    const raw = await client.get(`${prefix}/hosts/h3`).exec();
    const leaseId = raw.kvs[0]?.lease;
    assert.ok(leaseId !== undefined && String(leaseId) !== '0');
    // revoked as an expiry during a partition would: the key goes, and the server must notice and put it back
    await client.leaseClient.leaseRevoke({ ID: leaseId });
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const hosts = await registry(client).list();
      back = hosts.some((h) => h.hostId === 'h3' && h.alive);
    }
    assert.ok(back, 'host h3 registered again after its lease was revoked');
  } finally {
    await reg.stop();
  }
});
