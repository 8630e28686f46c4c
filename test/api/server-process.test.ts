import assert from 'node:assert/strict';
import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { freePort } from '../../src/lab/processes.js';
import { socketAnswers } from '../../src/server/unix-socket.js';
import { spawnFlatnetServer, waitAnswering, type FlatnetServer } from '../harness/flatnet-server.js';
import { pluginCall as post } from '../harness/plugin-client.js';
import { missing } from '../harness/requirements.js';
import { get } from './socket-client.js';

/** Exactly what a 20.10 dockerd writes for Activate: empty Host, no Content-Type, empty body. */
function rawGoActivate(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = connect({ path: socketPath });
    let text = '';
    conn.on('data', (d: Buffer) => {
      text += d.toString();
      if (/\r\n\r\n[\s\S]*\}/.test(text)) {
        conn.end();
        resolve(text);
      }
    });
    conn.on('error', reject);
    conn.write(
      'POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: 0\r\n' +
        'Accept: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n',
    );
  });
}

let etcd: EtcdCluster;
let dir: string;
let configFile: string;
const children: FlatnetServer[] = [];
const suffix = Math.random().toString(36).slice(2, 8);
const base = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
const subnet = `${base}.0/24`;
const subPool = `${base}.128/25`;

function startPlugin(socket: string, extra: string[] = []): FlatnetServer {
  const server = spawnFlatnetServer({
    socket,
    args: [
      '--config',
      configFile,
      '--etcd-endpoints',
      etcd.endpoints.join(','),
      '--etcd-prefix',
      `/flatnet-srvtest-${suffix}`,
      '--host-id',
      `srvtest-${suffix}`,
      '--state-dir',
      join(dir, 'state'),
      '--log-level',
      'warn',
      ...extra,
    ],
  });
  children.push(server);
  return server;
}

before(async () => {
  if (missing('etcd')) return;
  etcd = await startEtcdCluster({ members: 1 });
  dir = await mkdtemp(join(tmpdir(), 'flatnet-proc-'));
  configFile = join(dir, 'empty.conf');
  await writeFile(configFile, '');
});

after(async () => {
  for (const c of children) await c.stop('SIGKILL');
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test(
  'the server process: raw Activate, stale socket replaced, allocations survive, SIGTERM unlinks',
  { skip: missing('etcd') },
  async () => {
    const socket = join(dir, 'run', 'plugins', 'flatnet.sock');
    const first = startPlugin(socket);
    await waitAnswering(first);

    const raw = await rawGoActivate(socket);
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw, /\{"Implements":\["IpamDriver","NetworkDriver"\]\}/);

    const pool = await post(
      socket,
      'IpamDriver.RequestPool',
      JSON.stringify({ AddressSpace: 'FlatLocal', Pool: subnet, SubPool: subPool, Options: null, V6: false }) + '\n',
    );
    assert.equal(pool.status, 200, JSON.stringify(pool.json));
    const poolId = String(pool.json.PoolID);
    const got = await post(
      socket,
      'IpamDriver.RequestAddress',
      JSON.stringify({ PoolID: poolId, Address: '', Options: null }),
    );
    assert.equal(got.status, 200, JSON.stringify(got.json));
    const address = String(got.json.Address).split('/')[0] as string;

    // A second server on a live socket refuses and leaves the first one serving.
    const intruder = startPlugin(socket);
    assert.equal(await intruder.exited(), 2, 'a second server on a live socket is refused (exit 2, like any conflict)');
    assert.equal((await post(socket, 'Plugin.Activate')).status, 200);

    // Crash: the socket file stays behind.
    await first.stop('SIGKILL');
    assert.ok((await lstat(socket)).isSocket());
    assert.equal(await socketAnswers(socket), false);

    // Serving again on the path proves the stale file was replaced (listen() fails with EADDRINUSE otherwise).
    const metricsListen = `127.0.0.1:${await freePort()}`;
    const second = startPlugin(socket, ['--metrics-listen', metricsListen]);
    await waitAnswering(second);
    const health = await get(metricsListen, '/healthz');
    assert.equal(health.status, 200, health.text);
    const again = await post(
      socket,
      'IpamDriver.RequestAddress',
      JSON.stringify({ PoolID: poolId, Address: address, Options: null }),
    );
    assert.equal(again.status, 500, `${address} was handed out twice after a restart: ${JSON.stringify(again.json)}`);
    assert.ok(String(again.json.Err).length > 0);
    const other = await post(
      socket,
      'IpamDriver.RequestAddress',
      JSON.stringify({ PoolID: poolId, Address: '', Options: null }),
    );
    assert.equal(other.status, 200);
    assert.notEqual(String(other.json.Address).split('/')[0], address);
    const metrics = await get(metricsListen, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^flatnet_etcd_up 1$/m);
    assert.match(metrics.text, /flatnet_plugin_calls_total\{method="IpamDriver.RequestAddress",outcome="ok"\} 1/);

    await second.stop('SIGTERM');
    assert.equal(await second.exited(), 0);
    await assert.rejects(lstat(socket), { code: 'ENOENT' });
  },
);
