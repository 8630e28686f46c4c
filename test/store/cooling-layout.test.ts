import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { decodeCooling } from '../../src/ipam/model/cooling-record.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { missing } from '../harness/requirements.js';

/** The cooling keys as stored in real etcd (the layout documented in store/keys.ts), and what reuse clears. */
const skip = missing('etcd');
const suffix = Math.random().toString(36).slice(2, 8);
const prefix = `/flatnet-coolkeys-${suffix}`;
let etcd: EtcdCluster;
let client: Etcd3;

before(async () => {
  if (skip) return;
  etcd = await startEtcdCluster({ members: 1 });
  client = new Etcd3({ hosts: etcd.endpoints });
});
after(async () => {
  client?.close();
  await etcd?.stop();
});

test(
  'release writes cool/<block>, rel/<ip> and name/<name>; the block keeps its 32 bytes; --ip reuse clears them',
  { skip },
  async () => {
    const stores = new EtcdStores(client, prefix, silentLogger());
    let now = 2_000_000_000;
    const driver = new IpamDriverService(stores.ipam, 'k1', silentLogger(), {
      cooling: { policy: { cooldownSec: 300, stickySec: 3600 }, now: () => now },
    });
    const admin = new IpamAdminService(stores.ipam, silentLogger());
    const pool = await driver.requestPool({
      addressSpace: 'FlatLocal',
      pool: '10.66.0.0/24',
      subPool: '10.66.0.0/26',
      options: {},
      v6: false,
    });
    const address = (
      await driver.requestAddress({ poolId: pool.poolId, address: '', kind: 'container', endpointName: 'web/1' })
    ).address.split('/')[0] as string;
    await driver.releaseAddress(pool.poolId, address);
    const p = `${prefix}/ipam/v1/pool/10.66.0.0_24`;
    const block = await client.get(`${p}/block/0`).buffer();
    assert.equal(block?.length, 32, 'the bitmap stays 32 bytes: versions without cooling still read it');
    const cooling = decodeCooling((await client.get(`${p}/cool/0`).buffer()) ?? undefined);
    const bit = Number(address.split('.')[3]);
    assert.deepEqual(cooling.get(bit), { releasedAt: now, parked: true });
    const rel = JSON.parse((await client.get(`${p}/rel/${address}`).string()) ?? '{}') as Record<string, unknown>;
    assert.equal(rel.hostId, 'k1');
    assert.equal(rel.endpointName, 'web/1');
    assert.equal(typeof rel.releasedAt, 'string');
    assert.deepEqual(JSON.parse((await client.get(`${p}/name/web%2F1`).string()) ?? '{}'), { address });
    assert.equal(await client.get(`${p}/addr/${address}`).string(), null, 'no addr key: not held');
    now += 10;
    await driver.requestAddress({ poolId: pool.poolId, address, kind: 'container' });
    assert.equal(await client.get(`${p}/rel/${address}`).string(), null);
    assert.equal(await client.get(`${p}/cool/0`).string(), null, 'no entry left: the cool key goes');
    assert.deepEqual(
      (await admin.listAssignments()).map((a) => a.address),
      [address],
    );
  },
);
