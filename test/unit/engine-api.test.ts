import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerEngineApi, parseEngineVersion } from '../../src/docker/engine-api.js';

// The client's own handling of replies, deadlines and bad answers; the shapes themselves are checked against a
// real dockerd in test/docker/engine-api.test.ts.
let dir: string;
let server: Server;
let socketPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flatnet-engine-api-'));
  socketPath = join(dir, 'docker.sock');
  server = createServer((req, res) => {
    if (req.url === '/version') return res.end(JSON.stringify({ Version: '28.5.1', ApiVersion: '1.51' }));
    if (req.url === '/networks/aaaaaaaaaaaa') return res.writeHead(404).end('{"message":"no such network"}');
    if (req.url === '/networks/bbbbbbbbbbbb') return res.end('not json');
    if (req.url === '/networks/cccccccccccc') return; // never answers
    if (req.url === '/networks/dddddddddddd') return res.writeHead(500).end('{"message":"boom"}');
    if (req.url === '/networks/eeeeeeeeeeee')
      return res.end(JSON.stringify({ Id: 'eeeeeeeeeeee', Name: 'lan', Containers: null }));
    return res.end(
      JSON.stringify({
        Id: 'ffffffffffff',
        Name: 'lan',
        Containers: {
          c0ffee: {
            Name: 'web1',
            EndpointID: 'e1',
            MacAddress: '0a:66:0a:63:80:01',
            IPv4Address: '10.99.128.1/16',
            IPv6Address: '',
          },
        },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('engine versions are read as major.minor, Debian suffixes included', () => {
  assert.deepEqual(parseEngineVersion('28.5.1'), { major: 28, minor: 5 });
  assert.deepEqual(parseEngineVersion('20.10.24+dfsg1'), { major: 20, minor: 10 });
  assert.deepEqual(parseEngineVersion('dev'), { major: 0, minor: 0 });
});

test('version and endpoint holders are parsed; a missing network is undefined', async () => {
  const api = new DockerEngineApi({ socketPath });
  assert.deepEqual(await api.version(), { version: '28.5.1', apiVersion: '1.51', major: 28, minor: 5 });
  const holders = await api.endpointHolders('ffffffffffff');
  assert.deepEqual(holders?.get('e1'), {
    endpointId: 'e1',
    containerId: 'c0ffee',
    containerName: 'web1',
    macAddress: '0a:66:0a:63:80:01',
    ipv4Address: '10.99.128.1/16',
    ipv6Address: '',
  });
  assert.equal((await api.endpointHolders('eeeeeeeeeeee'))?.size, 0);
  assert.equal(await api.endpointHolders('aaaaaaaaaaaa'), undefined);
});

test('a silent, broken or absent dockerd fails fast with a clear error, and bad ids are refused', async () => {
  const api = new DockerEngineApi({ socketPath, timeoutMs: 200 });
  const t0 = Date.now();
  await assert.rejects(api.endpointHolders('cccccccccccc'), /did not answer \/networks\/cccccccccccc within 200 ms/);
  assert.ok(Date.now() - t0 < 2000);
  await assert.rejects(api.endpointHolders('bbbbbbbbbbbb'), /not JSON/);
  await assert.rejects(api.endpointHolders('dddddddddddd'), /answered 500/);
  await assert.rejects(new DockerEngineApi({ socketPath: join(dir, 'none.sock') }).version(), /cannot be reached/);
  await assert.rejects(api.endpointHolders('../containers/json'), /not a Docker network id/);
});
