import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockerEngineApi } from '../../src/docker/engine-api.js';
import { EngineVersionWatch } from '../../src/docker/engine-watch.js';
import { waitFor } from '../../src/lab/processes.js';
import { silentLogger } from '../../src/observability/logger.js';

// The watch over the real client and a socket that answers like dockerd's, or stalls like a dockerd that is
// itself waiting on the plugin.
let dir: string;
let server: Server;
let socketPath: string;
let answering = false;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flatnet-engine-watch-'));
  socketPath = join(dir, 'docker.sock');
  server = createServer((req, res) => {
    if (req.url === '/version' && answering) res.end(JSON.stringify({ Version: '28.5.1', ApiVersion: '1.51' }));
    // else: never answers
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

test('unknown while dockerd stalls, learned once it answers; start() never waits', async () => {
  const watch = new EngineVersionWatch(new DockerEngineApi({ socketPath, timeoutMs: 200 }), silentLogger(), { retryMs: 50, maxRetryMs: 100 });
  const before = Date.now();
  watch.start();
  assert.ok(Date.now() - before < 50, 'start returns at once');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(watch.current(), undefined, 'a stalled dockerd leaves the version unknown');
  answering = true;
  const v = await waitFor('the engine version', async () => watch.current(), 5000, 20);
  assert.equal(v.major, 28);
  assert.equal(v.version, '28.5.1');
  watch.stop();
});

test('no dockerd at all: stays unknown and keeps retrying quietly', async () => {
  const watch = new EngineVersionWatch(new DockerEngineApi({ socketPath: join(dir, 'absent.sock'), timeoutMs: 200 }), silentLogger(), { retryMs: 20 });
  watch.start();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(watch.current(), undefined);
  watch.stop();
});
