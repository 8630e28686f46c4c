import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DockerEngineApi } from '../../src/docker/engine-api.js';
import { silentLogger } from '../../src/observability/logger.js';
import { LocalHostView } from '../../src/server/host-view.js';

const network = (id: string, pool: string) =>
  JSON.stringify({ networkId: id, bridge: 'br0', parent: 'eth0', mtu: 1500, gateway: '', pool, gatewayIPv6: '', poolIPv6: '', generic: {}, internal: false, createdAt: '' });
const endpoint = (id: string, address: string) =>
  JSON.stringify({ endpointId: id, networkId: 'n1', address, addressIPv6: '', macAddress: '', hostIfname: '', containerIfname: '', createdAt: '' });

test('host view: endpoint records hold addresses; a pool is complete only with as many network records as claims', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-view-'));
  try {
    await mkdir(join(dir, 'networks'));
    await mkdir(join(dir, 'endpoints'));
    await writeFile(join(dir, 'networks', 'n1.json'), network('n1', '10.0.0.5/24'));
    await writeFile(join(dir, 'endpoints', 'e1.json'), endpoint('e1', '10.0.0.7/24'));
    const docker = new DockerEngineApi({ socketPath: join(dir, 'no-docker.sock'), timeoutMs: 200 });
    const source = new LocalHostView({ stateDir: dir, docker, logger: silentLogger() });
    const v = await source.view(new Map([['10.0.0.0/24', 1], ['10.1.0.0/24', 1]]));
    assert.deepEqual([[...v.held], [...v.complete], v.dockerComplete, v.unusable], [['10.0.0.7'], ['10.0.0.0/24'], false, undefined]);
    assert.match(v.incomplete.get('10.1.0.0/24') ?? '', /unreachable.*0 network record\(s\) for the 1 network/);
    // two networks on the pool (one under another driver), one record: the state dir alone cannot tell
    assert.deepEqual([...(await source.view(new Map([['10.0.0.0/24', 2]]))).complete], []);
    await writeFile(join(dir, 'endpoints', 'e2.json'), '{damaged');
    assert.match((await source.view(new Map())).unusable ?? '', /endpoint record e2 is unreadable/);
    // no state dir at all: nothing held, nothing complete, nothing unusable
    const empty = await new LocalHostView({ stateDir: join(dir, 'absent'), logger: silentLogger() }).view(new Map([['10.0.0.0/24', 1]]));
    assert.deepEqual([empty.held.size, empty.complete.size, empty.unusable], [0, 0, undefined]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
