import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DockerEngineApi } from '../../src/docker/engine-api.js';
import { silentLogger } from '../../src/observability/logger.js';
import { LocalHostView, staleEndpointRecord } from '../../src/agents/host-view.js';

const network = (id: string, pool: string) =>
  JSON.stringify({
    networkId: id,
    bridge: 'br0',
    parent: 'eth0',
    mtu: 1500,
    gateway: '',
    pool,
    gatewayIPv6: '',
    poolIPv6: '',
    generic: {},
    internal: false,
    createdAt: '',
  });
const endpoint = (id: string, address: string, createdAt = '') =>
  JSON.stringify({
    endpointId: id,
    networkId: 'n1',
    address,
    addressIPv6: '',
    macAddress: '',
    hostIfname: '',
    containerIfname: '',
    createdAt,
  });

test('host view: endpoint records hold addresses; a pool is complete only with as many network records as claims', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-view-'));
  try {
    await mkdir(join(dir, 'networks'));
    await mkdir(join(dir, 'endpoints'));
    await writeFile(join(dir, 'networks', 'n1.json'), network('n1', '10.0.0.5/24'));
    await writeFile(join(dir, 'endpoints', 'e1.json'), endpoint('e1', '10.0.0.7/24'));
    const docker = new DockerEngineApi({ socketPath: join(dir, 'no-docker.sock'), timeoutMs: 200 });
    const source = new LocalHostView({ stateDir: dir, docker, logger: silentLogger() });
    const v = await source.view(
      new Map([
        ['10.0.0.0/24', 1],
        ['10.1.0.0/24', 1],
      ]),
    );
    assert.deepEqual(
      [[...v.held], [...v.complete], v.dockerComplete, v.unusable],
      [['10.0.0.7'], ['10.0.0.0/24'], false, undefined],
    );
    assert.match(v.incomplete.get('10.1.0.0/24') ?? '', /unreachable.*0 network record\(s\) for the 1 network/);
    // two networks on the pool (one under another driver), one record: the state dir alone cannot tell
    assert.deepEqual([...(await source.view(new Map([['10.0.0.0/24', 2]]))).complete], []);
    await writeFile(join(dir, 'endpoints', 'e2.json'), '{damaged');
    assert.match((await source.view(new Map())).unusable ?? '', /endpoint record e2 is unreadable/);
    // no state dir at all: nothing held, nothing complete, nothing unusable
    const empty = await new LocalHostView({ stateDir: join(dir, 'absent'), logger: silentLogger() }).view(
      new Map([['10.0.0.0/24', 1]]),
    );
    assert.deepEqual([empty.held.size, empty.complete.size, empty.unusable], [0, 0, undefined]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("stale endpoint record: only with Docker's full view, an endpoint Docker does not know, older than the grace", () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  const o = { now, staleAfterMs: 60_000 };
  const old = { endpointId: 'e1', createdAt: '2026-12-01T11:58:00Z' };
  assert.equal(staleEndpointRecord(old, new Set(['e9']), o), true);
  assert.equal(staleEndpointRecord(old, new Set(['e1']), o), false, 'Docker knows it');
  assert.equal(staleEndpointRecord(old, undefined, o), false, 'no full view of Docker');
  assert.equal(
    staleEndpointRecord({ endpointId: 'e1', createdAt: '2026-12-01T11:59:30Z' }, new Set(), o),
    false,
    'young: Docker lists it only once joined',
  );
  assert.equal(
    staleEndpointRecord({ endpointId: 'e1', createdAt: 'garbage' }, new Set(), o),
    false,
    'unknown age never frees',
  );
});

test('host view: with Docker read in full, a record of an endpoint Docker forgot (removed while the plugin was down) holds nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-view-'));
  const socketPath = join(dir, 'docker.sock');
  const server = createServer((req, res) => {
    if (req.url === '/networks')
      return res.end(
        JSON.stringify([
          {
            Id: 'aaaaaaaaaaaa',
            Name: 'lan',
            Driver: 'flatnet',
            IPAM: { Driver: 'flatnet', Config: [{ Subnet: '10.0.0.0/24' }] },
          },
        ]),
      );
    return res.end(
      JSON.stringify({
        Id: 'aaaaaaaaaaaa',
        Name: 'lan',
        Containers: { c1: { Name: 'web1', EndpointID: 'e1', IPv4Address: '10.0.0.7/24' } },
      }),
    );
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  try {
    await mkdir(join(dir, 'networks'));
    await mkdir(join(dir, 'endpoints'));
    await writeFile(join(dir, 'networks', 'n1.json'), network('n1', '10.0.0.5/24'));
    const longAgo = new Date(Date.now() - 600_000).toISOString();
    await writeFile(join(dir, 'endpoints', 'e1.json'), endpoint('e1', '10.0.0.7/24', longAgo));
    await writeFile(join(dir, 'endpoints', 'e2.json'), endpoint('e2', '10.0.0.8/24', longAgo));
    await writeFile(join(dir, 'endpoints', 'e3.json'), endpoint('e3', '10.0.0.9/24', new Date().toISOString()));
    const docker = new DockerEngineApi({ socketPath, timeoutMs: 1000 });
    const v = await new LocalHostView({ stateDir: dir, docker, logger: silentLogger(), staleAfterMs: 120_000 }).view(
      new Map([['10.0.0.0/24', 1]]),
    );
    assert.equal(v.dockerComplete, true);
    assert.deepEqual([...v.held].sort(), ['10.0.0.7', '10.0.0.9'], 'e2 is stale; e3 is young; e1 Docker knows');
    // Without Docker's view the state dir is all there is: every record holds.
    const alone = await new LocalHostView({
      stateDir: dir,
      docker: new DockerEngineApi({ socketPath: join(dir, 'none.sock'), timeoutMs: 200 }),
      logger: silentLogger(),
      staleAfterMs: 120_000,
    }).view(new Map([['10.0.0.0/24', 1]]));
    assert.deepEqual([...alone.held].sort(), ['10.0.0.7', '10.0.0.8', '10.0.0.9']);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  }
});
