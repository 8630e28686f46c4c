import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { HostNetworkDriver } from '../../src/netdriver/host-network-driver.js';
import { silentLogger } from '../../src/observability/logger.js';
import { NET_ID, appWith, dockerCall } from './app-harness.js';
import { RecordingIpam } from './recording-drivers.js';

/**
 * The real network driver behind the plugin API, refusing networks flatnet cannot serve. The refusal comes
 * before any host change: `ip` here does not exist, so a driver that went on to touch links would fail
 * with another message, and the state directory would be created.
 */
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flatnet-refuse-'));
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function app() {
  const network = new HostNetworkDriver({
    stateDir: join(dir, 'state'),
    logger: silentLogger(),
    ip: new IpRunner({ ipPath: join(dir, 'no-ip'), nsenterPath: join(dir, 'no-nsenter') }),
    announce: false,
  });
  return appWith(new RecordingIpam(), network, silentLogger());
}

const body = (options: Record<string, unknown> | null, addressSpace = 'FlatLocal') => ({
  NetworkID: NET_ID,
  Options: options,
  IPv4Data: [{ AddressSpace: addressSpace, Pool: '172.18.0.0/16', Gateway: '172.18.0.1/16', AuxAddresses: null }],
  IPv6Data: [],
});

test("CreateNetwork with Docker's default IPAM (address space LocalDefault) is refused: add --ipam-driver flatnet", async () => {
  const res = await dockerCall(
    app(),
    'NetworkDriver.CreateNetwork',
    body({ 'com.docker.network.generic': {} }, 'LocalDefault'),
  );
  assert.equal(res.status, 400, 'a refusal of the request, not a server failure');
  assert.match(String(res.body.Err), /another IPAM driver \(address space "LocalDefault"\).*--ipam-driver flatnet/);
  await assert.rejects(readdir(join(dir, 'state')), { code: 'ENOENT' }, 'nothing recorded');
});

test('CreateNetwork with --internal (com.docker.network.internal: true) is refused, not ignored', async () => {
  const res = await dockerCall(
    app(),
    'NetworkDriver.CreateNetwork',
    body({ 'com.docker.network.generic': {}, 'com.docker.network.internal': true }),
  );
  assert.equal(res.status, 400);
  assert.match(String(res.body.Err), /--internal is not supported/);
  await assert.rejects(readdir(join(dir, 'state')), { code: 'ENOENT' }, 'nothing recorded');
});

test('the same request without --internal gets past the refusals (and fails only at the missing ip)', async () => {
  const res = await dockerCall(
    app(),
    'NetworkDriver.CreateNetwork',
    body({ 'com.docker.network.generic': { parent: 'eth0' }, 'com.docker.network.internal': false }),
  );
  assert.equal(res.status, 500);
  assert.match(String(res.body.Err), /Could not run .*no-ip/);
});
