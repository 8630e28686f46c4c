import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { FlatnetError } from '../../src/errors.js';
import { parseSubnet } from '../../src/net/address.js';
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { testEtcdClient } from '../harness/etcd-client.js';
import { IpamKeys } from '../../src/store/keys.js';
import { missing } from '../harness/requirements.js';
import { TcpProxy } from '../harness/tcp-proxy.js';
import { v4 } from '../harness/ipam-requests.js';
import { until } from '../harness/until.js';

/*
 * etcd faults against a real 3-member cluster: replies lost after commit (through a TCP proxy that swallows
 * etcd's bytes), a full outage, and the leader killed during allocations. The election test kills a member,
 * so it runs last.
 */
const skip = missing('etcd');
let cluster: EtcdCluster;
let direct: Etcd3;
const clients: Etcd3[] = [];
const proxies: TcpProxy[] = [];

const client = (endpoints: string[], prefix: string, timeout = 5000): Etcd3 => {
  const c = testEtcdClient(endpoints, { prefix, timeoutMs: timeout });
  clients.push(c);
  return c;
};
const freshPrefix = (): string => `/f${randomBytes(4).toString('hex')}`;
const container = (poolId: string, address = '') => ({ poolId, address, kind: 'container' as const });

before(async () => {
  if (skip) return;
  cluster = await startEtcdCluster({ members: 3 });
  direct = client(cluster.endpoints, '/direct');
});
after(async () => {
  for (const p of proxies) await p.close();
  for (const c of clients) c.close();
  await cluster?.stop();
});

/** A driver whose only etcd endpoint is a proxy in front of member 0. */
async function proxiedDriver(
  prefix: string,
  hostId: string,
): Promise<{ driver: EtcdIpamDriver; etcd: Etcd3; proxy: TcpProxy }> {
  const proxy = await TcpProxy.start(cluster.endpoints[0] as string);
  proxies.push(proxy);
  const etcd = client([proxy.url], prefix);
  return { driver: new EtcdIpamDriver({ etcd, prefix, hostId, logger: silentLogger() }), etcd, proxy };
}

/**
 * Makes the next write txn (one with puts) lose its reply: the proxy swallows etcd's bytes on the open
 * connections from right before that txn is sent. Resolves when a request has crossed the stalled proxy.
 */
function loseNextWriteReply(etcd: Etcd3, proxy: TcpProxy): Promise<void> {
  const kv = etcd.kv;
  const original = kv.txn.bind(kv);
  return new Promise<void>((reached) => {
    kv.txn = (req, options) => {
      if (req.success?.some((op) => op.request_put !== undefined)) {
        kv.txn = original;
        void proxy.stallReplies().then(reached);
      }
      return original(req, options);
    };
  });
}

/** Runs `call` with its write's reply lost; checks (via `committed`) that it committed before the reply. */
async function withLostReply<T>(
  etcd: Etcd3,
  proxy: TcpProxy,
  call: () => Promise<T>,
  what: string,
  committed: () => Promise<boolean>,
): Promise<T> {
  const reached = loseNextWriteReply(etcd, proxy);
  let settled = false;
  const pending = call().finally(() => {
    settled = true;
  });
  await reached;
  // the stalled txn reaches etcd within 1.5 s or never
  await until(`${what} in etcd`, async () => ((await committed()) ? true : undefined), 1500);
  assert.equal(settled, false, `${what}: the caller must not have had an answer when etcd committed (reply lost)`);
  assert.ok(proxy.stalledCount() > 0, 'a connection is stalled');
  return pending;
}

async function addrRecords(prefix: string, pool: string): Promise<Record<string, string>> {
  const keys = new IpamKeys(prefix);
  return direct
    .getAll()
    .prefix(keys.addrPrefix(parseSubnet(pool)))
    .strings();
}

/** Every claim on a pool as stored: one claim key per host (a config may still embed claims of older versions). */
async function poolClaims(prefix: string, pool: string): Promise<{ hostId: string }[]> {
  const keyed = await direct
    .getAll()
    .prefix(new IpamKeys(prefix).claimPrefix(parseSubnet(pool)))
    .strings();
  return [
    ...(await poolConfig(prefix, pool)).claims,
    ...Object.values(keyed).flatMap((v) => JSON.parse(v) as { hostId: string }[]),
  ];
}

async function poolConfig(
  prefix: string,
  pool: string,
): Promise<{
  claims: { hostId: string }[];
  reservations: { address: string; kind: string; holders: Record<string, number> }[];
}> {
  const raw = await direct.get(new IpamKeys(prefix).config(parseSubnet(pool))).string();
  assert.ok(raw !== null, 'pool config exists');
  return JSON.parse(raw) as {
    claims: { hostId: string }[];
    reservations: { address: string; kind: string; holders: Record<string, number> }[];
  };
}

test(
  'an allocation whose reply is lost after commit is reported once, with the committed address',
  { skip },
  async () => {
    const prefix = freshPrefix();
    const { driver, etcd, proxy } = await proxiedDriver(prefix, 'h1');
    const { poolId } = await driver.requestPool(v4('10.61.0.0/16', '10.61.4.0/22'));
    const first = (await driver.requestAddress(container(poolId))).address;
    const r = await withLostReply(
      etcd,
      proxy,
      () => driver.requestAddress(container(poolId)),
      'the allocation',
      async () => Object.keys(await addrRecords(prefix, '10.61.0.0/16')).length === 2,
    );
    const records = await addrRecords(prefix, '10.61.0.0/16');
    const held = Object.keys(records)
      .map((k) => k.slice(k.lastIndexOf('/') + 1))
      .sort();
    assert.equal(held.length, 2, `no leaked address record: ${held.join(', ')}`);
    assert.deepEqual(
      held,
      [first, r.address].map((a) => a.split('/')[0] as string).sort(),
      'the caller got the committed address',
    );
    // and the next allocation is normal
    const next = (await driver.requestAddress(container(poolId))).address;
    assert.equal(Object.keys(await addrRecords(prefix, '10.61.0.0/16')).length, 3);
    assert.ok(![first, r.address].includes(next));
  },
);

test(
  'a full batch of 100 (the largest txn: 100 addresses, block, 7 summary nodes, marker) whose reply is lost is not allocated twice',
  { skip },
  async () => {
    const prefix = freshPrefix();
    const { driver, etcd, proxy } = await proxiedDriver(prefix, 'h1');
    // 128 allocatable addresses in one block of a /64: 28 first, then a batch of 100 fills the block, which
    // flips the summary bit on all 7 levels above it
    const pool = 'fd00:62::/64';
    const { poolId } = await driver.requestPool({ ...v4(pool, 'fd00:62::8000:0:0:0/121'), v6: true });
    for (let i = 0; i < 28; i++) await driver.requestAddress(container(poolId));
    const got = await withLostReply(
      etcd,
      proxy,
      () => Promise.all(Array.from({ length: 100 }, () => driver.requestAddress(container(poolId)))),
      'the batch',
      async () => Object.keys(await addrRecords(prefix, pool)).length > 28,
    );
    assert.equal(new Set(got.map((g) => g.address)).size, 100);
    assert.equal(
      Object.keys(await addrRecords(prefix, pool)).length,
      128,
      'exactly the addresses handed out are recorded',
    );
    await assert.rejects(driver.requestAddress(container(poolId)), /exhausted/);
  },
);

test('a --ip request whose reply is lost is not "in use" against itself', { skip }, async () => {
  const prefix = freshPrefix();
  const { driver, etcd, proxy } = await proxiedDriver(prefix, 'h1');
  const { poolId } = await driver.requestPool(v4('10.63.0.0/16', '10.63.4.0/22'));
  const r = await withLostReply(
    etcd,
    proxy,
    () => driver.requestAddress(container(poolId, '10.63.4.77')),
    'the --ip allocation',
    async () => Object.keys(await addrRecords(prefix, '10.63.0.0/16')).length === 1,
  );
  assert.equal(r.address, '10.63.4.77/16');
  assert.deepEqual(
    Object.keys(await addrRecords(prefix, '10.63.0.0/16')).map((k) => k.slice(k.lastIndexOf('/') + 1)),
    ['10.63.4.77'],
  );
});

test('a pool claim and a gateway hold whose replies are lost are not doubled', { skip }, async () => {
  const prefix = freshPrefix();
  const { driver, etcd, proxy } = await proxiedDriver(prefix, 'h1');
  // warm the connection (and the marker lease) first
  await assert.rejects(driver.requestAddress(container('10.64.0.0/16|10.64.4.0/22')), (e) => e instanceof FlatnetError);
  const pool = await withLostReply(
    etcd,
    proxy,
    () => driver.requestPool(v4('10.64.0.0/16', '10.64.4.0/22')),
    'the pool claim',
    async () => (await direct.get(new IpamKeys(prefix).config(parseSubnet('10.64.0.0/16'))).string()) !== null,
  );
  assert.equal(pool.poolId, '10.64.0.0/16|10.64.4.0/22');
  assert.deepEqual(
    (await poolClaims(prefix, '10.64.0.0/16')).map((c) => c.hostId),
    ['h1'],
  );

  const gw = await withLostReply(
    etcd,
    proxy,
    () => driver.requestAddress({ poolId: pool.poolId, address: '10.64.0.1', kind: 'gateway' }),
    'the gateway hold',
    async () => (await poolConfig(prefix, '10.64.0.0/16')).reservations.length > 0,
  );
  assert.equal(gw.address, '10.64.0.1/16');
  assert.deepEqual(
    (await poolConfig(prefix, '10.64.0.0/16')).reservations.map((r) => [r.address, r.kind, r.holders]),
    [['10.64.0.1', 'gateway', { '~keyed': 1 }]],
    'the config holds the reservation, not its holders',
  );
  const hold = new IpamKeys(prefix).hold(parseSubnet('10.64.0.0/16'), '10.64.0.1', 'h1');
  assert.equal(await direct.get(hold).string(), '{"refs":1}', "h1's one reference, in its hold key");
});

for (const mode of ['blackhole', 'refuse'] as const) {
  test(
    `a full outage (${mode}) fails RequestAddress with an error naming etcd in under 6 s; it works again once etcd is back`,
    { skip },
    async () => {
      const prefix = freshPrefix();
      const { driver, proxy } = await proxiedDriver(prefix, 'h1');
      const { poolId } = await driver.requestPool(v4('10.65.0.0/16', '10.65.4.0/22'));
      await driver.requestAddress(container(poolId));
      proxy.setMode(mode);
      // the cached block (straight to the txn) and a --ip request (a read first)
      for (const request of [container(poolId), container(poolId, '10.65.4.99')]) {
        const started = Date.now();
        const err = await driver.requestAddress(request).then(
          () => undefined,
          (e: unknown) => e,
        );
        const seconds = (Date.now() - started) / 1000;
        console.log(
          `# outage (${mode}, ${request.address === '' ? 'allocation' : '--ip'}): failed after ${seconds.toFixed(2)} s: ${(err as Error | undefined)?.message}`,
        );
        assert.ok(
          err instanceof FlatnetError && err.kind === 'unavailable',
          `an unavailable error, got ${String(err)}`,
        );
        assert.match(err.message, /etcd/);
        assert.ok(seconds < 6, `failed within 6 s (took ${seconds} s)`);
      }
      proxy.setMode('pass');
      const back = Date.now();
      const r = await driver.requestAddress(container(poolId));
      console.log(
        `# outage (${mode}): first allocation after etcd came back took ${((Date.now() - back) / 1000).toFixed(2)} s`,
      );
      assert.match(r.address, /^10\.65\.[4-7]\.\d+\/16$/);
      assert.equal(
        Object.keys(await addrRecords(prefix, '10.65.0.0/16')).length,
        2,
        'nothing leaked by the failed calls',
      );
    },
  );
}

test('the leader killed (SIGKILL) during allocations fails none of them and leaks nothing', { skip }, async () => {
  const prefix = freshPrefix();
  const etcd = client(cluster.endpoints, prefix);
  const drivers = ['h1', 'h2'].map((h) => new EtcdIpamDriver({ etcd, prefix, hostId: h, logger: silentLogger() }));
  const [d1, d2] = drivers as [EtcdIpamDriver, EtcdIpamDriver];
  const { poolId } = await d1.requestPool(v4('10.66.0.0/16', '10.66.0.0/18'));
  await d2.requestPool(v4('10.66.0.0/16', '10.66.0.0/18'));
  // which member leads?
  let leader = -1;
  for (const [i, m] of cluster.members.entries()) {
    const c = client([m.clientUrl], prefix);
    const s = await c.maintenance.status();
    if (s.header.member_id === s.leader) leader = i;
  }
  assert.ok(leader >= 0, 'found the leader');
  const got: string[] = [];
  const failures: string[] = [];
  let stop = false;
  const loop = async (d: EtcdIpamDriver): Promise<void> => {
    while (!stop) {
      try {
        got.push((await d.requestAddress(container(poolId))).address);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: 8 }, (_, i) => loop(drivers[i % 2] as EtcdIpamDriver));
  await new Promise((r) => setTimeout(r, 700));
  const before = got.length;
  const killedAt = Date.now();
  process.kill((cluster.members[leader] as { pid: number }).pid, 'SIGKILL');
  // keep allocating through the election and a while after it
  let resumedAfter = -1;
  while (Date.now() - killedAt < 6000) {
    await new Promise((r) => setTimeout(r, 50));
    if (resumedAfter < 0 && got.length > before + 8) resumedAfter = Date.now() - killedAt;
  }
  stop = true;
  await Promise.all(loops);
  console.log(
    `# leader SIGKILL: ${got.length} allocations (${before} before the kill), ${failures.length} failed; allocations flowed again ${(resumedAfter / 1000).toFixed(2)} s after the kill`,
  );
  assert.deepEqual(failures, [], 'no allocation failed');
  assert.equal(new Set(got).size, got.length, 'all distinct');
  const records = Object.keys(await addrRecords(prefix, '10.66.0.0/16'));
  assert.equal(records.length, got.length, 'every recorded address was handed out (nothing leaked)');
});
