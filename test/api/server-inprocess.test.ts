import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import type { IpamAdmin, PoolSummary } from '../../src/ipam/contract.js';
import { settingsSchema, type Settings } from '../../src/config/settings.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { freePort } from '../../src/lab/processes.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createMetricsApp } from '../../src/server/metrics-listener.js';
import { startServer, type RunningServer } from '../../src/server/server.js';
import { socketAnswers } from '../../src/server/unix-socket.js';
import type { Drivers } from '../../src/server/drivers.js';
import { missing } from '../harness/requirements.js';
import { RecordingIpam, RecordingNetwork } from './recording-drivers.js';
import { pluginCall as post } from '../harness/plugin-client.js';
import { get } from './socket-client.js';

/** An admin view with one fixed pool: the server's gauges are under test here, not the IPAM's counting. */
function fixedAdmin(pools: PoolSummary[]): IpamAdmin {
  const no = (): never => {
    throw new Error('not used by the server');
  };
  return {
    addIpRange: no,
    removeIpRange: no,
    listIpRanges: no,
    addHostRange: no,
    removeHostRange: no,
    listHostRanges: no,
    listAssignments: no,
    assignmentPages: no,
    listReleased: no,
    releaseAddress: no,
    listConflicts: no,
    clearConflict: no,
    poolSummaries: async () => pools,
  };
}

const POOL: PoolSummary = {
  subnet: '10.20.0.0/24',
  family: 4,
  ranges: [],
  hostRanges: [],
  reservations: [],
  claims: [],
  size: '250',
  used: 3,
  free: '247',
};

function doubles(): Drivers {
  return { ipam: new RecordingIpam(), network: new RecordingNetwork(), admin: fixedAdmin([POOL]) };
}

async function settingsFor(dir: string, etcdEndpoints: string): Promise<Settings> {
  return settingsSchema.parse({
    socket: join(dir, 'plugins', 'flatnet.sock'),
    etcdEndpoints,
    etcdPrefix: `/flatnet-test-${Math.random().toString(36).slice(2, 8)}`,
    etcdTimeoutMs: '500',
    hostId: 'inproc-host',
    logLevel: 'silent',
    stateDir: join(dir, 'state'),
    metricsListen: '127.0.0.1:0',
  });
}

describe('server with etcd unreachable', () => {
  let dir: string;
  let running: RunningServer | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flatnet-srv-'));
  });
  after(async () => {
    await running?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('answers Activate and capabilities, reports etcd down on /healthz, serves /metrics', async () => {
    const deadPort = await freePort();
    const settings = await settingsFor(dir, `http://127.0.0.1:${deadPort}`);
    running = await startServer(settings, silentLogger(), { createDrivers: doubles });
    const activate = await post(settings.socket, 'Plugin.Activate');
    assert.deepEqual(activate, { status: 200, json: { Implements: ['IpamDriver', 'NetworkDriver'] } });
    assert.equal((await post(settings.socket, 'NetworkDriver.GetCapabilities')).status, 200);
    assert.equal((await post(settings.socket, 'IpamDriver.GetDefaultAddressSpaces')).status, 200);
    const bad = await post(settings.socket, 'IpamDriver.RequestAddress', '');
    assert.equal(bad.status, 400);
    assert.equal((await post(settings.socket, 'Plugin.Activate')).status, 200);

    assert.equal((await lstat(settings.socket)).mode & 0o777, 0o660);
    assert.equal((await lstat(join(dir, 'plugins'))).mode & 0o777, 0o700);

    assert.ok(running.metricsAddress);
    const health = await get(running.metricsAddress, '/healthz');
    assert.equal(health.status, 503);
    assert.equal((JSON.parse(health.text) as { etcd: string }).etcd, 'unreachable');
    const metrics = await get(running.metricsAddress, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /flatnet_plugin_calls_total\{method="Plugin.Activate",outcome="ok"\} \d+/);
    assert.match(metrics.text, /flatnet_pool_addresses\{pool="10.20.0.0\/24"\} 250/);
    assert.match(metrics.text, /flatnet_pool_addresses_used\{pool="10.20.0.0\/24"\} 3/);

    await running.close();
    await assert.rejects(lstat(settings.socket), { code: 'ENOENT' });
    running = undefined;
  });

  test('refuses a path that is a live socket or not a socket, and replaces a stale one', async () => {
    const settings = await settingsFor(dir, 'http://127.0.0.1:9');
    const other = createNetServer().listen(settings.socket);
    await new Promise((r) => other.once('listening', r));
    try {
      await assert.rejects(startServer(settings, silentLogger(), { createDrivers: doubles }), /already listening/);
    } finally {
      await new Promise((r) => other.close(r));
    }
    const filePath = join(dir, 'plain-file.sock');
    await writeFile(filePath, 'x');
    await assert.rejects(
      startServer({ ...settings, socket: filePath, metricsListen: undefined }, silentLogger(), {
        createDrivers: doubles,
      }),
      /is not a socket/,
    );
    // A socket file nobody listens on: left by a process killed while listening, as a crashed plugin leaves it.
    spawnSync(process.execPath, [
      '-e',
      'require("net").createServer().listen(process.argv[1], () => process.kill(process.pid, "SIGKILL"))',
      settings.socket,
    ]);
    assert.ok((await lstat(settings.socket)).isSocket());
    assert.equal(await socketAnswers(settings.socket), false);
    // listen() would fail with EADDRINUSE had the stale file been left in place.
    running = await startServer({ ...settings, metricsListen: undefined }, silentLogger(), { createDrivers: doubles });
    assert.equal((await post(settings.socket, 'Plugin.Activate')).status, 200);
    await running.close();
    running = undefined;
  });
});

test('close() lets an in-flight call finish, then removes the socket', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-srv-'));
  try {
    const settings = { ...(await settingsFor(dir, 'http://127.0.0.1:9')), metricsListen: undefined };
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let entered: () => void = () => undefined;
    const handling = new Promise<void>((r) => (entered = r));
    const slow = new RecordingIpam();
    slow.requestAddress = async () => {
      entered();
      await gate;
      return { address: '10.20.0.9/24' };
    };
    const running = await startServer(settings, silentLogger(), {
      createDrivers: () => ({ ...doubles(), ipam: slow }),
    });
    const inFlight = post(
      settings.socket,
      'IpamDriver.RequestAddress',
      JSON.stringify({ PoolID: '10.20.0.0/24', Address: '', Options: null }),
    );
    await handling;
    const closed = running.close(); // stops accepting synchronously
    release();
    assert.deepEqual(await inFlight, { status: 200, json: { Address: '10.20.0.9/24', Data: {} } });
    await closed;
    await assert.rejects(lstat(settings.socket), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('server with a live etcd', { skip: missing('etcd') }, () => {
  let etcd: EtcdCluster;
  let dir: string;
  before(async () => {
    etcd = await startEtcdCluster({ members: 1 });
    dir = await mkdtemp(join(tmpdir(), 'flatnet-srv-'));
  });
  after(async () => {
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('/healthz is 200 with etcd reachable', async () => {
    const settings = await settingsFor(dir, etcd.endpoints.join(','));
    const running = await startServer(settings, silentLogger(), { createDrivers: doubles });
    try {
      assert.ok(running.metricsAddress);
      const health = await get(running.metricsAddress, '/healthz');
      assert.equal(health.status, 200);
      assert.deepEqual(JSON.parse(health.text), { status: 'ok', etcd: 'reachable' });
    } finally {
      await running.close();
    }
  });
});

test('the metrics app answers JSON for other paths and methods, never an HTML page', async () => {
  const app = createMetricsApp({
    listen: '127.0.0.1:0',
    admin: fixedAdmin([POOL]),
    checkEtcd: async () => undefined,
    timeoutMs: 500,
    logger: silentLogger(),
  });
  const missing = await request(app).get('/nope').expect(404);
  assert.match(String(missing.headers['content-type']), /^application\/json/);
  assert.match((missing.body as { error: string }).error, /no such path \/nope/);
  const post = await request(app).post('/metrics').send('x').expect(405);
  assert.deepEqual(post.body, { error: 'only GET is served' });
  assert.equal(post.headers['x-powered-by'], undefined);
  const health = await request(app).get('/healthz').expect(200);
  assert.deepEqual(health.body, { status: 'ok', etcd: 'reachable' });
  const metrics = await request(app).get('/metrics?x=1').expect(200);
  assert.match(metrics.text, /flatnet_pool_addresses\{pool="10.20.0.0\/24"\} 250/);
});
