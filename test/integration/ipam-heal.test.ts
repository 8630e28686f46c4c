import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { settingsSchema, type Settings } from '../../src/config/settings.js';
import { createIpam } from '../../src/ipam/services/driver-service.js';
import { freePort } from '../../src/lab/processes.js';
import { silentLogger } from '../../src/observability/logger.js';
import { registry } from '../../src/observability/metrics.js';
import type { DriverFactory } from '../../src/server/drivers.js';
import { EtcdIpamAdmin, EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { ipamHealer, openReleaseJournal, releaseJournalPath } from '../../src/agents/ipam-healing.js';
import { startServer } from '../../src/server/server.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { IpamKeys } from '../../src/store/keys.js';
import { parseSubnet } from '../../src/net/address.js';
import { RecordingNetwork } from '../api/recording-drivers.js';
import { assertOk, runFlatnet } from '../harness/cli-runner.js';
import { startFlatnetServer } from '../harness/flatnet-server.js';
import { pluginCall } from '../harness/plugin-client.js';
import { missing } from '../harness/requirements.js';
import { sampleValue } from '../observability/exposition.js';
import { v4 } from '../harness/ipam-requests.js';
import { until } from '../harness/until.js';

const skip = missing('etcd');
let dir: string;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flatnet-heal-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
// after the hooks above, so that what they stop still has its etcd
const lab = etcdFixture(skip);

/** A TCP relay in front of etcd: closing it is an etcd outage as the server sees it (etcd itself keeps running). */
async function etcdRelay(
  target: string,
): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const listenPort = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = createConnection({ host: hostname, port: Number(port) });
        for (const x of [client, upstream]) {
          sockets.add(x);
          x.once('close', () => sockets.delete(x));
          x.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
        client.once('close', () => upstream.destroy());
        upstream.once('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(listenPort, '127.0.0.1', () => resolve());
      server = s;
    });
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const x of sockets) x.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  await open();
  return { url: `http://127.0.0.1:${listenPort}`, cut, restore: open, close: cut };
}

function settingsFor(name: string, o: Partial<Record<string, string>>): Settings {
  return settingsSchema.parse({
    socket: join(dir, name, 'flatnet.sock'),
    etcdEndpoints: lab.cluster.endpoints.join(','),
    etcdPrefix: `/heal-${randomBytes(4).toString('hex')}`,
    etcdTimeoutMs: '1000',
    hostId: `heal-${name}`,
    logLevel: 'silent',
    stateDir: join(dir, name, 'state'),
    // no dockerd on this path: the state dir is the host's whole view
    dockerSocket: join(dir, 'no-docker.sock'),
    ...o,
  });
}

/** The production IPAM (releases answered before their txn), journal and healer; the network side is a recording double. */
const ipamReleasingAfterReply: DriverFactory = (stores, settings, logger) => {
  const { driver } = createIpam(stores.ipam, settings.hostId, logger, {
    journal: openReleaseJournal(settings.stateDir, logger),
    releaseAfterReply: true,
  });
  return {
    ipam: driver,
    network: new RecordingNetwork(),
    heal: ipamHealer(driver, stores.ipam, settings, logger),
    close: () => driver.settleReleases(),
  };
};

/** The production IPAM, journal and healer over the server's stores; the network side is a recording double. */
const realIpam: DriverFactory = (stores, settings, logger) => {
  const { driver } = createIpam(stores.ipam, settings.hostId, logger, {
    journal: openReleaseJournal(settings.stateDir, logger),
  });
  return {
    ipam: driver,
    network: new RecordingNetwork(),
    heal: ipamHealer(driver, stores.ipam, settings, logger),
  };
};

/** A pool (with its sub-pool) and one container address from it, through the plugin socket. */
async function poolWithAddress(
  socket: string,
  pool: string,
  subPool: string,
): Promise<{ PoolID: string; address: string }> {
  const res = await pluginCall(socket, 'IpamDriver.RequestPool', {
    AddressSpace: 'FlatLocal',
    Pool: pool,
    SubPool: subPool,
    Options: {},
    V6: false,
  });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const PoolID = res.json.PoolID as string;
  const addr = await pluginCall(socket, 'IpamDriver.RequestAddress', { PoolID, Address: '', Options: {} });
  assert.equal(addr.status, 200, JSON.stringify(addr.json));
  return { PoolID, address: (addr.json.Address as string).split('/')[0] as string };
}

test(
  'releases during an etcd outage answer at once, are journaled, and land after etcd returns',
  { skip },
  async (t) => {
    const relay = await etcdRelay(lab.cluster.endpoints[0] as string);
    const settings = settingsFor('outage', {
      etcdEndpoints: relay.url,
      releaseRetryMs: '500',
      reconcileIntervalMs: '0',
      reconcileGraceMs: '86400000',
    });
    const running = await startServer(settings, silentLogger(), { createDrivers: realIpam });
    const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix: settings.etcdPrefix, logger: silentLogger() });
    try {
      const { PoolID, address } = await poolWithAddress(settings.socket, '10.61.0.0/24', '10.61.0.0/28');
      assert.equal((await admin.listAssignments()).length, 1);

      await relay.cut();
      const asked = Date.now();
      const rel = await pluginCall(settings.socket, 'IpamDriver.ReleaseAddress', { PoolID, Address: address });
      const relPool = await pluginCall(settings.socket, 'IpamDriver.ReleasePool', { PoolID });
      const answered = Date.now() - asked;
      assert.deepEqual([rel.status, rel.json, relPool.status, relPool.json], [200, {}, 200, {}]);
      const journal = JSON.parse(await readFile(releaseJournalPath(settings.stateDir), 'utf8')) as {
        entries: { op: string }[];
      };
      assert.deepEqual(
        journal.entries.map((e) => e.op),
        ['address', 'pool'],
      );
      assert.equal((await admin.listAssignments()).length, 1, 'nothing reached etcd during the outage');
      const landedBefore = sampleValue(await registry.metrics(), 'flatnet_release_journal_landed_total');
      assert.equal(sampleValue(await registry.metrics(), 'flatnet_release_journal_backlog'), 2);

      await new Promise((r) => setTimeout(r, 2000));
      await relay.restore();
      const back = Date.now();
      await until(
        'the journaled releases to land',
        async () => ((await admin.poolSummaries()).length === 0 ? true : undefined),
        60_000,
      );
      const landed = Date.now() - back;
      // the journal drops an entry right after it landed
      await until(
        'the journal to empty',
        async () => {
          const left = JSON.parse(await readFile(releaseJournalPath(settings.stateDir), 'utf8')) as {
            entries: unknown[];
          };
          return left.entries.length === 0 ? true : undefined;
        },
        5000,
      );
      const after = await registry.metrics();
      assert.equal(sampleValue(after, 'flatnet_release_journal_backlog'), 0);
      assert.equal(sampleValue(after, 'flatnet_release_journal_landed_total') - landedBefore, 2);
      t.diagnostic(
        `two releases answered in ${answered} ms during the outage; landed ${landed} ms after etcd returned`,
      );
    } finally {
      await running.close();
      await relay.close();
    }
  },
);

test('a restarted server frees an address no endpoint holds within its reconcile period', { skip }, async (t) => {
  const base = settingsFor('restart', { reconcileIntervalMs: '0', reconcileGraceMs: '1000' });
  let running = await startServer(base, silentLogger(), { createDrivers: realIpam });
  const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix: base.etcdPrefix, logger: silentLogger() });
  const call = (m: string, body: unknown) => pluginCall(base.socket, m, body);
  let freedAfter = 0;
  try {
    const a = (
      await call('IpamDriver.RequestPool', {
        AddressSpace: 'FlatLocal',
        Pool: '10.62.0.0/24',
        SubPool: '10.62.0.0/28',
        Options: {},
        V6: false,
      })
    ).json.PoolID as string;
    const b = (
      await call('IpamDriver.RequestPool', {
        AddressSpace: 'FlatLocal',
        Pool: '10.63.0.0/24',
        SubPool: '10.63.0.0/28',
        Options: {},
        V6: false,
      })
    ).json.PoolID as string;
    const alloc = async (PoolID: string) =>
      ((await call('IpamDriver.RequestAddress', { PoolID, Address: '', Options: {} })).json.Address as string).split(
        '/',
      )[0] as string;
    const [held, orphan, unseen] = [await alloc(a), await alloc(a), await alloc(b)];
    // The network driver's records: network 1 on pool A with one endpoint; nothing on this host records pool B.
    const state = base.stateDir;
    await mkdir(join(state, 'networks'), { recursive: true });
    await mkdir(join(state, 'endpoints'), { recursive: true });
    const now = new Date().toISOString();
    await writeFile(
      join(state, 'networks', 'n1.json'),
      JSON.stringify({
        networkId: 'n1',
        bridge: 'br0',
        parent: 'eth0',
        mtu: 1500,
        gateway: '',
        pool: '10.62.0.0/24',
        gatewayIPv6: '',
        poolIPv6: '',
        generic: {},
        internal: false,
        createdAt: now,
      }),
    );
    await writeFile(
      join(state, 'endpoints', 'e1.json'),
      JSON.stringify({
        endpointId: 'e1',
        networkId: 'n1',
        address: `${held}/24`,
        addressIPv6: '',
        macAddress: '02:00:00:00:00:01',
        hostIfname: 'x',
        containerIfname: 'y',
        createdAt: now,
      }),
    );
    // the plugin dies; the orphan's container goes meanwhile (Docker's ReleaseAddress never reaches flatnet)
    await running.close();
    await new Promise((r) => setTimeout(r, 1200));

    const restarted = { ...base, reconcileIntervalMs: 2000 };
    const started = Date.now();
    running = await startServer(restarted, silentLogger(), { createDrivers: realIpam });
    await until(
      'the orphan to be freed',
      async () => ((await admin.listAssignments()).some((x) => x.address === orphan) ? undefined : true),
      60_000,
    );
    freedAfter = Date.now() - started;
    await new Promise((r) => setTimeout(r, 2500));
    const left = (await admin.listAssignments()).map((x) => x.address).sort();
    assert.deepEqual(
      left,
      [held, unseen].sort(),
      'the held address stays, and so does the one whose pool this host cannot see',
    );
    // The host's own gauges, from its last reconcile round (this process's registry: the server runs in it).
    const metrics = await registry.metrics();
    assert.equal(sampleValue(metrics, 'flatnet_host_held_addresses', { pool: '10.62.0.0/24' }), 1);
    assert.equal(sampleValue(metrics, 'flatnet_host_held_addresses', { pool: '10.63.0.0/24' }), 1);
    assert.equal(sampleValue(metrics, 'flatnet_reconcile_skipped_pools'), 1);
    assert.ok(sampleValue(metrics, 'flatnet_reconcile_freed_total') >= 1);
    assert.ok(sampleValue(metrics, 'flatnet_reconcile_rounds_total', { outcome: 'ok' }) >= 2);

    // the CLI sees the same: no orphans left on pool A, pool B skipped for its incomplete view
    const flags = [
      '--etcd-endpoints',
      base.etcdEndpoints.join(','),
      '--etcd-prefix',
      base.etcdPrefix,
      '--host-id',
      base.hostId,
      '--state-dir',
      state,
      '--docker-socket',
      base.dockerSocket,
    ];
    const orphans = await runFlatnet(['ip', 'list', '--orphans', '--json', ...flags]);
    assertOk(orphans);
    const parsed = JSON.parse(orphans.stdout) as { orphans: unknown[]; skipped: { subnet: string }[] };
    assert.deepEqual([parsed.orphans, parsed.skipped.map((s) => s.subnet)], [[], ['10.63.0.0/24']]);
    const refused = await runFlatnet(['ip', 'release', held, ...flags]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /held by a live endpoint on this host/);
    t.diagnostic(`orphan freed ${freedAfter} ms after the restart (reconcile period 2000 ms, grace 1000 ms)`);
  } finally {
    await running.close();
  }
});

test(
  "a server that started while etcd was away frees the orphan within a reconcile period of etcd's return",
  { skip },
  async (t) => {
    const relay = await etcdRelay(lab.cluster.endpoints[0] as string);
    const base = settingsFor('etcd-return', {
      etcdEndpoints: relay.url,
      reconcileIntervalMs: '0',
      reconcileGraceMs: '0',
    });
    const h = new EtcdIpamDriver({
      etcd: lab.etcd,
      prefix: base.etcdPrefix,
      hostId: base.hostId,
      logger: silentLogger(),
    });
    const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix: base.etcdPrefix, logger: silentLogger() });
    const { poolId } = await h.requestPool({
      addressSpace: 'FlatLocal',
      pool: '10.65.0.0/24',
      subPool: '10.65.0.0/28',
      options: {},
      v6: false,
    });
    const orphan = (await h.requestAddress({ poolId, address: '', kind: 'container' })).address.split('/')[0];
    await mkdir(join(base.stateDir, 'networks'), { recursive: true });
    await writeFile(
      join(base.stateDir, 'networks', 'n1.json'),
      JSON.stringify({
        networkId: 'n1',
        bridge: 'br0',
        parent: 'eth0',
        mtu: 1500,
        gateway: '',
        pool: '10.65.0.0/24',
        gatewayIPv6: '',
        poolIPv6: '',
        generic: {},
        internal: false,
        createdAt: new Date().toISOString(),
      }),
    );
    await relay.cut();
    const running = await startServer({ ...base, reconcileIntervalMs: 3000 }, silentLogger(), {
      createDrivers: realIpam,
    });
    try {
      await new Promise((r) => setTimeout(r, 4000));
      assert.ok(
        (await admin.listAssignments()).some((x) => x.address === orphan),
        'nothing freed while etcd is away',
      );
      await relay.restore();
      const back = Date.now();
      await until(
        'the orphan to be freed',
        async () => ((await admin.listAssignments()).some((x) => x.address === orphan) ? undefined : true),
        60_000,
      );
      t.diagnostic(`orphan freed ${Date.now() - back} ms after etcd returned (reconcile period 3000 ms)`);
    } finally {
      await running.close();
      await relay.close();
    }
  },
);

test(
  'a stale claim never blocks RequestPool; host forget is refused for a live host and works with --force',
  { skip },
  async () => {
    const prefix = `/heal-${randomBytes(4).toString('hex')}`;
    const h1 = new EtcdIpamDriver({ etcd: lab.etcd, prefix, hostId: 'h1', logger: silentLogger() });
    const gone = new EtcdIpamDriver({ etcd: lab.etcd, prefix, hostId: 'gone', logger: silentLogger() });
    const { poolId } = await h1.requestPool(v4('10.64.0.0/24', '10.64.0.0/28'));
    // its ReleasePool was lost: the next create of the same pool on the host still succeeds
    assert.equal((await h1.requestPool(v4('10.64.0.0/24', '10.64.0.0/28'))).poolId, poolId);
    await gone.requestPool(v4('10.64.0.0/24', '10.64.0.0/28'));
    await gone.requestAddress({ poolId, address: '', kind: 'gateway' });
    await gone.requestAddress({ poolId, address: '', kind: 'container' });

    const stores = new EtcdStores(lab.etcd, prefix, silentLogger());
    const live = stores.hosts.start({ hostId: 'h1', logger: silentLogger(), ttlSeconds: 5 });
    await live.ready;
    const flags = ['--etcd-endpoints', lab.cluster.endpoints.join(','), '--etcd-prefix', prefix];
    try {
      const refused = await runFlatnet(['host', 'forget', 'h1', '--force', ...flags]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /^flatnet: host h1 is alive/);
      const preview = await runFlatnet(['host', 'forget', 'gone', ...flags]);
      assertOk(preview);
      assert.match(preview.stdout, /pass --force/);
      const forced = await runFlatnet(['host', 'forget', 'gone', '--force', ...flags]);
      assertOk(forced);
      assert.match(forced.stdout, /forgot host gone/);
      const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix, logger: silentLogger() });
      const [summary] = await admin.poolSummaries();
      assert.deepEqual(
        summary?.claims.map((c) => c.hostId),
        ['h1', 'h1'],
      );
      assert.deepEqual(summary?.reservations, []);
      assert.deepEqual(await admin.listAssignments(), []);
      // an unreadable address record: `ip release` still frees it (and its bit)
      const damaged = (await h1.requestAddress({ poolId, address: '', kind: 'container' })).address.split(
        '/',
      )[0] as string;
      await lab.etcd.put(new IpamKeys(prefix).addr(parseSubnet('10.64.0.0/24'), damaged)).value('{not json');
      const freed = await runFlatnet([
        'ip',
        'release',
        damaged,
        '--docker-socket',
        join(dir, 'no-docker.sock'),
        '--state-dir',
        join(dir, 'none'),
        ...flags,
      ]);
      assertOk(freed);
      assert.match(freed.stdout, /was held by an unreadable record/);
      assert.equal(
        (await h1.requestAddress({ poolId, address: damaged, kind: 'container' })).address,
        `${damaged}/24`,
        'free again',
      );
      const status = await runFlatnet(['status', ...flags]);
      assertOk(status);
      assert.match(status.stdout, /10\.64\.0\.0\/24\s+h1\s+10\.64\.0\.0\/24\|10\.64\.0\.0\/28\s+2/);
    } finally {
      await live.stop();
    }
  },
);

const journalEntries = async (settings: Settings): Promise<{ op: string; address?: string }[]> =>
  (
    JSON.parse(await readFile(releaseJournalPath(settings.stateDir), 'utf8')) as {
      entries: { op: string; address?: string }[];
    }
  ).entries;

test(
  'ReleaseAddress answered before its txn: the txn lands right after, a request for that address waits for it, an outage leaves it journaled',
  { skip },
  async (t) => {
    const relay = await etcdRelay(lab.cluster.endpoints[0] as string);
    const settings = settingsFor('after-reply', {
      etcdEndpoints: relay.url,
      releaseRetryMs: '500',
      reconcileIntervalMs: '0',
      reconcileGraceMs: '86400000',
    });
    const running = await startServer(settings, silentLogger(), { createDrivers: ipamReleasingAfterReply });
    const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix: settings.etcdPrefix, logger: silentLogger() });
    try {
      const { PoolID, address } = await poolWithAddress(settings.socket, '10.62.0.0/24', '10.62.0.0/28');

      // Released, then asked for again at once (docker rm; docker run --ip): the second call waits for the first's txn.
      const rel = await pluginCall(settings.socket, 'IpamDriver.ReleaseAddress', { PoolID, Address: address });
      // (a MAC option marks a container's request: a bare one this soon after RequestPool would be an aux address)
      const again = await pluginCall(settings.socket, 'IpamDriver.RequestAddress', {
        PoolID,
        Address: address,
        Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:3e:00:01' },
      });
      assert.deepEqual(
        [rel.status, again.status, again.json.Address],
        [200, 200, `${address}/24`],
        JSON.stringify(again.json),
      );
      const held = await admin.listAssignments();
      assert.deepEqual(
        held.map((a) => a.address),
        [address],
        'held once, by the second request',
      );

      const released = Date.now();
      await pluginCall(settings.socket, 'IpamDriver.ReleaseAddress', { PoolID, Address: address });
      await until(
        'the release to land in etcd',
        async () => ((await admin.listAssignments()).length === 0 ? true : undefined),
        5000,
      );
      const landedMs = Date.now() - released;
      await until(
        'the journal entry to go once it landed',
        async () => ((await journalEntries(settings)).length === 0 ? true : undefined),
        5000,
      );

      // etcd unreachable: the answer still comes at once, and the entry waits in the journal until etcd is back.
      const second = await pluginCall(settings.socket, 'IpamDriver.RequestAddress', {
        PoolID,
        Address: '',
        Options: {},
      });
      const other = (second.json.Address as string).split('/')[0] as string;
      await relay.cut();
      const asked = Date.now();
      const cutRel = await pluginCall(settings.socket, 'IpamDriver.ReleaseAddress', { PoolID, Address: other });
      const answeredMs = Date.now() - asked;
      assert.equal(cutRel.status, 200);
      assert.ok(answeredMs < 500, `answered in ${answeredMs} ms, not after the etcd budget`);
      assert.deepEqual(
        (await journalEntries(settings)).map((e) => e.address),
        [other],
      );
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(
        (await admin.listAssignments()).map((a) => a.address),
        [other],
        'nothing reached etcd during the outage',
      );
      await relay.restore();
      await until(
        'the journaled release to land',
        async () => ((await admin.listAssignments()).length === 0 ? true : undefined),
        10_000,
      );
      t.diagnostic(`release landed ${landedMs} ms after its answer; answered in ${answeredMs} ms with etcd cut`);
    } finally {
      await running.close();
      await relay.close();
    }
  },
);

test(
  'a server SIGKILLed between the release answer and its txn: the next start lands the release from the journal',
  { skip: skip || missing('root') },
  async () => {
    const relay = await etcdRelay(lab.cluster.endpoints[0] as string);
    const settings = settingsFor('killed', { etcdEndpoints: relay.url });
    const args = [
      '--etcd-endpoints',
      relay.url,
      '--etcd-prefix',
      settings.etcdPrefix,
      '--etcd-timeout-ms',
      '1000',
      '--host-id',
      settings.hostId,
      '--state-dir',
      settings.stateDir,
      '--docker-socket',
      settings.dockerSocket,
      '--release-retry-ms',
      '500',
      '--reconcile-interval-ms',
      '0',
      '--conflict-probe',
      'off',
      '--log-level',
      'warn',
    ];
    let server = await startFlatnetServer({ socket: settings.socket, args });
    const admin = new EtcdIpamAdmin({ etcd: lab.etcd, prefix: settings.etcdPrefix, logger: silentLogger() });
    try {
      const { PoolID, address } = await poolWithAddress(settings.socket, '10.63.0.0/24', '10.63.0.0/28');
      // The txn cannot land (etcd unreachable) when the kill comes: the window between answer and txn, held open.
      await relay.cut();
      const asked = Date.now();
      const rel = await pluginCall(settings.socket, 'IpamDriver.ReleaseAddress', { PoolID, Address: address });
      const answeredMs = Date.now() - asked;
      assert.equal(rel.status, 200);
      // Before its txn could even time out (1 s): answered from the journal entry alone, the txn still to come.
      assert.ok(answeredMs < 500, `answered in ${answeredMs} ms`);
      await server.stop('SIGKILL');
      await relay.restore();
      assert.deepEqual(
        (await admin.listAssignments()).map((a) => a.address),
        [address],
        'the release never reached etcd',
      );
      assert.deepEqual(
        (await journalEntries(settings)).map((e) => e.address),
        [address],
        'but its journal entry survived the kill',
      );
      server = await startFlatnetServer({ socket: settings.socket, args });
      await until(
        'the restarted server to land the release',
        async () => ((await admin.listAssignments()).length === 0 ? true : undefined),
        10_000,
      );
    } finally {
      await server.stop();
      await relay.close();
    }
  },
);
