import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { FlatnetError } from '../../src/errors.js';
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { silentLogger } from '../../src/observability/logger.js';
import { testEtcdClient } from '../harness/etcd-client.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { kind, v4 } from '../harness/ipam-requests.js';

const skip = missing('etcd');
const clients: Etcd3[] = [];
const client = (endpoints = lab.cluster.endpoints, timeout = 5000): Etcd3 => {
  const c = testEtcdClient(endpoints, { timeoutMs: timeout });
  clients.push(c);
  return c;
};
const freshPrefix = (): string => `/t${randomBytes(4).toString('hex')}`;
const driver = (prefix: string, hostId: string): EtcdIpamDriver =>
  new EtcdIpamDriver({ etcd: client(), prefix, hostId, logger: silentLogger() });
const container = (poolId: string, address = '') => ({ poolId, address, kind: 'container' as const });

after(() => {
  for (const c of clients) c.close();
});
const lab = etcdFixture(skip, { members: 3 });

async function drain(d: EtcdIpamDriver, poolId: string): Promise<{ got: string[]; end: string }> {
  const got: string[] = [];
  for (;;) {
    const r = await Promise.allSettled([1, 2, 3, 4].map(() => d.requestAddress(container(poolId))));
    let end = '';
    for (const x of r) {
      if (x.status === 'fulfilled') got.push(x.value.address);
      else end = x.reason instanceof FlatnetError ? `${x.reason.kind}: ${x.reason.message}` : String(x.reason);
    }
    if (end) return { got, end };
  }
}

test(
  'independent allocators (clients and processes) drain a pool of 64 into 64 distinct addresses',
  { skip },
  async () => {
    const prefix = freshPrefix();
    const drivers = ['h1', 'h2', 'h3', 'h4'].map((h) => driver(prefix, h));
    const ids = await Promise.all(
      drivers.map(async (d) => (await d.requestPool(v4('10.50.0.0/24', '10.50.0.64/26'))).poolId),
    );
    assert.deepEqual(new Set(ids), new Set(['10.50.0.0/24|10.50.0.64/26']));
    const worker = fileURLToPath(new URL('./ipam-worker.js', import.meta.url));
    const spawnWorker = (host: string) =>
      new Promise<{ got: string[]; end: string }>((resolve, reject) => {
        execFile(
          process.execPath,
          [worker, lab.cluster.endpoints.join(','), prefix, host, '10.50.0.0/24', '10.50.0.64/26'],
          (err, out) => (err ? reject(err) : resolve(JSON.parse(out) as { got: string[]; end: string })),
        );
      });
    const results = await Promise.all([
      ...drivers.map((d, i) => drain(d, ids[i] as string)),
      spawnWorker('p1'),
      spawnWorker('p2'),
    ]);
    const all = results.flatMap((r) => r.got);
    assert.equal(all.length, 64);
    assert.equal(new Set(all).size, 64);
    for (const a of all) assert.match(a, /^10\.50\.0\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\/24$/);
    for (const r of results) assert.match(r.end, /exhausted/);
    await assert.rejects(
      drivers[0]!.requestAddress(container(ids[0]!)),
      /Pool 10\.50\.0\.0\/24\|10\.50\.0\.64\/26 is exhausted/,
    );

    // release and re-request; a restarted driver sees every assignment. Which allocators won addresses is a
    // race, so take one in-process driver that did, and an address some other allocator holds.
    const hosts = ['h1', 'h2', 'h3', 'h4'];
    const winner = results.findIndex((r, i) => i < hosts.length && r.got.length > 0);
    assert.ok(winner >= 0, 'an in-process driver got an address');
    const mine = results[winner]!.got[0]!.split('/')[0]!;
    await drivers[winner]!.releaseAddress(ids[winner]!, mine);
    const restarted = driver(prefix, hosts[winner]!);
    assert.equal((await restarted.requestAddress(container(ids[0]!))).address, `${mine}/24`);
    await assert.rejects(restarted.requestAddress(container(ids[0]!)), kind('exhausted'));
    // a host that does not own an address cannot free it; releasing what nobody holds succeeds
    // Under load one allocator may win the whole pool: then hand one of its addresses to another host.
    let theirs = results.find((r, i) => i !== winner && r.got.length > 0)?.got[0]?.split('/')[0];
    if (theirs === undefined) {
      theirs = results[winner]!.got[1]!.split('/')[0]!;
      await restarted.releaseAddress(ids[0]!, theirs);
      const second = drivers[(winner + 1) % hosts.length]!;
      assert.equal((await second.requestAddress(container(ids[0]!, theirs))).address, `${theirs}/24`);
    }
    await restarted.releaseAddress(ids[0]!, theirs);
    await assert.rejects(restarted.requestAddress(container(ids[0]!, theirs)), kind('conflict'));
    await restarted.releaseAddress(ids[0]!, '10.50.0.200');
    await restarted.releaseAddress(ids[0]!, '10.99.0.1');
    await assert.rejects(restarted.releaseAddress(ids[0]!, 'bogus'), kind('invalid'));
  },
);

test('pools are shared by subnet across hosts, claims are per host', { skip }, async () => {
  const prefix = freshPrefix();
  const [a, b] = [driver(prefix, 'ha'), driver(prefix, 'hb')];
  await assert.rejects(a.requestPool(v4('10.60.0.0/24')), /flatnet ip-range add/);
  const pa = await a.requestPool(v4('10.60.0.0/24', '10.60.0.0/28'));
  assert.deepEqual(pa, { poolId: '10.60.0.0/24|10.60.0.0/28', pool: '10.60.0.0/24', data: {} });
  // the same pool again on the host is one more network on it (counted); another sub-pool is an overlap
  assert.equal((await a.requestPool(v4('10.60.0.0/24', '10.60.0.0/28'))).poolId, pa.poolId);
  await assert.rejects(a.requestPool(v4('10.60.0.0/24', '10.60.0.16/28')), kind('conflict'));
  await assert.rejects(b.requestPool(v4('10.60.0.0/16', '10.60.0.0/28')), kind('conflict'));
  await assert.rejects(b.requestPool(v4('10.60.0.0/24', '10.61.0.0/28')), kind('invalid'));
  const pb = await b.requestPool(v4('10.60.0.0/24', '10.60.0.0/28'));
  assert.equal(pb.poolId, pa.poolId);

  // gateway reservations are idempotent across hosts and never handed to containers
  const gw = { poolId: pa.poolId, address: '', kind: 'gateway' as const };
  assert.equal((await a.requestAddress(gw)).address, '10.60.0.1/24');
  assert.equal((await b.requestAddress(gw)).address, '10.60.0.1/24');
  assert.equal(
    (await a.requestAddress({ poolId: pa.poolId, address: '10.60.0.200', kind: 'aux' })).address,
    '10.60.0.200/24',
  );
  await assert.rejects(a.requestAddress({ poolId: pa.poolId, address: '10.61.0.1', kind: 'aux' }), kind('invalid'));
  await assert.rejects(a.requestAddress(container(pa.poolId, '10.60.0.1')), kind('invalid'));
  assert.equal((await a.requestAddress(container(pa.poolId, '10.60.0.9'))).address, '10.60.0.9/24');
  await assert.rejects(b.requestAddress(container(pa.poolId, '10.60.0.9')), kind('conflict'));
  await assert.rejects(b.requestAddress(container(pa.poolId, '10.60.0.100')), kind('invalid'));
  await assert.rejects(a.requestAddress({ poolId: pa.poolId, address: '10.60.0.9', kind: 'aux' }), kind('conflict'));
  const got = new Set<string>();
  for (let i = 0; i < 13; i++) got.add((await b.requestAddress(container(pb.poolId))).address);
  assert.equal(got.size, 13);
  assert.ok(!got.has('10.60.0.0/24') && !got.has('10.60.0.1/24') && !got.has('10.60.0.9/24'));
  await assert.rejects(b.requestAddress(container(pb.poolId)), kind('exhausted'));

  // ReleasePool from one host leaves the pool to the other; unknown PoolIDs succeed, bad ones are refused
  await a.releasePool(pa.poolId);
  await a.releasePool(pa.poolId);
  await a.releasePool('10.77.0.0/24');
  await assert.rejects(a.releasePool('net-1'), kind('invalid'));
  await b.releaseAddress(pb.poolId, '10.60.0.9');
  await assert.rejects(b.requestAddress(container(pb.poolId, '10.60.0.9')), kind('conflict'));
  const one = [...got][0]!.split('/')[0]!;
  await b.releaseAddress(pb.poolId, one);
  assert.equal((await b.requestAddress(container(pb.poolId))).address, `${one}/24`);
});

test(
  "releases that arrive together are freed in one txn; another host's address among them is left alone",
  { skip },
  async () => {
    const prefix = freshPrefix();
    const [a, b] = [driver(prefix, 'ra'), driver(prefix, 'rb')];
    const { poolId } = await a.requestPool(v4('10.80.0.0/24', '10.80.0.0/25'));
    await b.requestPool(v4('10.80.0.0/24', '10.80.0.0/25'));
    const bare = (cidr: string): string => cidr.split('/')[0]!;
    const mine = (await Promise.all(Array.from({ length: 20 }, () => a.requestAddress(container(poolId))))).map((r) =>
      bare(r.address),
    );
    const theirs = bare((await b.requestAddress(container(poolId))).address);
    const etcd = client();
    const revision = async (): Promise<bigint> => BigInt((await etcd.get(`${prefix}/nothing`).exec()).header.revision);

    const before = await revision();
    await Promise.all([...mine, theirs].map((address) => a.releaseAddress(poolId, address)));
    assert.equal(await revision(), before + 1n, 'twenty releases of one block, one txn');
    await assert.rejects(a.requestAddress(container(poolId, theirs)), kind('conflict'), 'still held by the other host');
    for (const address of mine)
      assert.equal((await a.requestAddress(container(poolId, address))).address, `${address}/24`);
  },
);

test('IPv6 pools allocate with bigint offsets', { skip }, async () => {
  const d = driver(freshPrefix(), 'h6');
  const p = await d.requestPool({
    addressSpace: 'FlatLocal',
    pool: 'fd00:10::/64',
    subPool: 'fd00:10::8000:0:0:0/120',
    options: {},
    v6: true,
  });
  assert.equal(p.poolId, 'fd00:10::/64|fd00:10:0:0:8000::/120');
  const r = await d.requestAddress(container(p.poolId));
  assert.equal(r.address, 'fd00:10:0:0:8000::/64');
  await assert.rejects(
    d.requestPool({ addressSpace: 'FlatLocal', pool: 'fd00:10::/64', subPool: '', options: {}, v6: false }),
    kind('invalid'),
  );
});

test('an unreachable etcd gives an unavailable error, not a crash', { skip }, async () => {
  const d = new EtcdIpamDriver({
    etcd: client(['http://127.0.0.1:1'], 300),
    prefix: '/x',
    hostId: 'h',
    logger: silentLogger(),
  });
  await assert.rejects(d.requestPool(v4('10.70.0.0/24', '10.70.0.0/26')), kind('unavailable'));
  await assert.rejects(d.requestAddress(container('10.70.0.0/24')), kind('unavailable'));
});
