import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { EtcdIpamAdmin } from '../../src/lab/etcd-ipam.js';
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { silentLogger } from '../../src/observability/logger.js';
import { testEtcdClient } from '../harness/etcd-client.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { TcpProxy } from '../harness/tcp-proxy.js';
import { kind, v4 } from '../harness/ipam-requests.js';

const skip = missing('etcd');

const lab = etcdFixture(skip);

test('ip ranges, host ranges, gateway data, listing and release', { skip }, async () => {
  const prefix = `/t${randomBytes(4).toString('hex')}`;
  const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix, logger: silentLogger() });
  const h1 = new EtcdIpamDriver({ etcd: lab.etcd, prefix, hostId: 'h1', logger: silentLogger() });
  const h2 = new EtcdIpamDriver({ etcd: lab.etcd, prefix, hostId: 'h2', logger: silentLogger() });

  await assert.rejects(h1.requestPool(v4('')), /pass --subnet/);
  const r = await admin.addIpRange({ start: '192.168.7.100/24', end: '192.168.7.103' });
  assert.deepEqual(
    [r.subnet, r.start, r.end, r.origin, r.size],
    ['192.168.7.0/24', '192.168.7.100', '192.168.7.103', 'admin', '4'],
  );
  assert.deepEqual(await admin.addIpRange({ start: '192.168.7.100', end: '192.168.7.103' }), r);
  await assert.rejects(admin.addIpRange({ start: '192.168.7.103', end: '192.168.7.110' }), kind('conflict'));
  await assert.rejects(admin.addIpRange({ start: '192.168.0.1/16', end: '192.168.0.9' }), kind('conflict'));
  await assert.rejects(admin.addIpRange({ start: '10.9.9.9', end: '10.9.9.10' }), kind('invalid'));
  await admin.addHostRange({ start: '192.168.7.1/24', end: '192.168.7.100', gateway: '192.168.7.1' });
  assert.deepEqual(
    (await admin.listHostRanges()).map((h) => [h.start, h.end]),
    [['192.168.7.1', '192.168.7.100']],
  );

  // empty Pool: a configured pool this host does not hold yet; then none left for it
  const p1 = await h1.requestPool(v4(''));
  assert.deepEqual(p1, {
    poolId: '192.168.7.0/24',
    pool: '192.168.7.0/24',
    data: { 'com.docker.network.gateway': '192.168.7.1/24' },
  });
  await assert.rejects(h1.requestPool(v4('')), kind('exhausted'));
  await assert.rejects(h1.requestPool(v4('', '192.168.7.0/28')), kind('invalid'));
  const p2 = await h2.requestPool(v4('192.168.7.0/24'));
  assert.equal(p2.poolId, p1.poolId);

  const got = [];
  for (let i = 0; i < 3; i++)
    got.push(
      (await h1.requestAddress({ poolId: p1.poolId, address: '', kind: 'container', macAddress: '02:42:00:00:00:01' }))
        .address,
    );
  assert.deepEqual(got.sort(), ['192.168.7.101/24', '192.168.7.102/24', '192.168.7.103/24']);
  await assert.rejects(h2.requestAddress({ poolId: p2.poolId, address: '', kind: 'container' }), kind('exhausted'));

  const list = await admin.listAssignments({ hostId: 'h1' });
  assert.equal(list.length, 3);
  assert.equal(list[0]?.macAddress, '02:42:00:00:00:01');
  assert.equal((await admin.listAssignments({ hostId: 'h2' })).length, 0);
  await assert.rejects(admin.removeIpRange({ start: '192.168.7.100', end: '192.168.7.103' }), kind('conflict'));
  const [summary] = await admin.poolSummaries();
  assert.deepEqual([summary?.size, summary?.used, summary?.free, summary?.claims.length], ['3', 3, '0', 2]);

  const freed = await admin.releaseAddress('192.168.7.102');
  assert.equal(freed?.hostId, 'h1');
  assert.equal(await admin.releaseAddress('192.168.7.102'), undefined);
  assert.equal(
    (await h2.requestAddress({ poolId: p2.poolId, address: '', kind: 'container' })).address,
    '192.168.7.102/24',
  );

  for (const a of ['192.168.7.101', '192.168.7.103']) await h1.releaseAddress(p1.poolId, a);
  await h2.releaseAddress(p2.poolId, '192.168.7.102');
  await admin.removeIpRange({ start: '192.168.7.100', end: '192.168.7.103' });
  await admin.removeHostRange({ start: '192.168.7.1/24', end: '192.168.7.100' });
  assert.deepEqual(await admin.listIpRanges(), []);
  await h1.releasePool(p1.poolId);
  await h2.releasePool(p2.poolId);
  assert.deepEqual(await admin.poolSummaries(), []);
  await h1.requestPool(v4('192.168.0.0/16', '192.168.7.0/24'));
});

test('idle checks finish while other hosts allocate and release in another range of the pool', { skip }, async () => {
  const prefix = `/t${randomBytes(4).toString('hex')}`;
  // the checks go over a slow link (40 ms per reply): every read-decide-write spans several of the others' commits
  const proxy = await TcpProxy.start(lab.cluster.endpoints[0] as string);
  proxy.delayReplies(40);
  const slow = testEtcdClient([proxy.url]);
  const admin = new EtcdIpamAdmin({ etcd: slow, prefix, logger: silentLogger() });
  const h1 = new EtcdIpamDriver({ etcd: slow, prefix, hostId: 'h1', logger: silentLogger() });
  await admin.addIpRange({ start: '10.61.255.1/16', end: '10.61.255.254' });
  await admin.addIpRange({ start: '10.61.16.1/16', end: '10.61.31.254' });
  // four other hosts, each in a /22 of the other range, two callers each: allocate, release, again
  let churning = true;
  let churned = 0;
  const loops = [16, 20, 24, 28].flatMap((third) => {
    const host = new EtcdIpamDriver({ etcd: lab.etcd, prefix, hostId: `busy${third}`, logger: silentLogger() });
    const pool = host.requestPool(v4('10.61.0.0/16', `10.61.${third}.0/22`));
    return [0, 1].map(async () => {
      const { poolId } = await pool;
      while (churning) {
        const { address } = await host.requestAddress({ poolId, address: '', kind: 'container' });
        await host.releaseAddress(poolId, address.split('/')[0] as string);
        churned++;
      }
    });
  });
  let idleOps = 0;
  try {
    while (churned < 4) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 3; i++) {
      if (i > 0) await admin.addIpRange({ start: '10.61.255.1/16', end: '10.61.255.254' });
      await admin.removeIpRange({ start: '10.61.255.1', end: '10.61.255.254' });
      const mine = await h1.requestPool(v4('10.61.0.0/16', '10.61.254.0/24'));
      await h1.releasePool(mine.poolId);
      idleOps += 2;
    }
    await admin.addHostRange({ start: '10.61.255.1/16', end: '10.61.255.50', gateway: '10.61.255.1' });
    idleOps++;
  } finally {
    churning = false;
    await Promise.all(loops);
    slow.close();
    await proxy.close();
  }
  const direct = new EtcdIpamAdmin({ etcd: lab.etcd, prefix, logger: silentLogger() });
  const ranges = (await direct.listIpRanges()).map((r) => [r.start, r.end]);
  assert.deepEqual(ranges, [['10.61.16.1', '10.61.31.254']], 'the removed range and the --ip-range are gone');
  assert.equal((await direct.listHostRanges()).length, 1);
  assert.equal(idleOps, 7);
  assert.ok(churned > 4, `h2 kept allocating meanwhile (${churned} rounds)`);
});
