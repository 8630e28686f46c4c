import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HostNetworkDriver } from '../../src/netdriver/host-network-driver.js';
import { DriverState } from '../../src/netdriver/state.js';
import { silentLogger } from '../../src/observability/logger.js';

/** CreateEndpoint tells the owner hook which endpoint and network hold the addresses; a throwing hook costs nothing. */
const NET = '1'.repeat(64);
const EP = '2'.repeat(64);

test('CreateEndpoint reports endpoint, network and addresses to the owner hook; a failing hook does not fail it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-hook-'));
  try {
    const state = new DriverState(dir);
    await state.init();
    await state.putNetwork({
      networkId: NET,
      bridge: 'br0',
      parent: 'eth0',
      mtu: 1500,
      gateway: '',
      pool: '10.1.0.0/24',
      gatewayIPv6: '',
      poolIPv6: '',
      generic: {},
      internal: false,
      createdAt: new Date().toISOString(),
    });
    const seen: unknown[] = [];
    const driver = new HostNetworkDriver({
      stateDir: dir,
      logger: silentLogger(),
      announce: false,
      owners: { created: (e) => seen.push(e), joined: () => undefined, removed: (id) => seen.push(`removed ${id}`) },
    });
    await driver.createEndpoint({
      networkId: NET,
      endpointId: EP,
      interface: { address: '10.1.0.5/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    assert.deepEqual(seen, [{ networkId: NET, endpointId: EP, addresses: ['10.1.0.5/24', ''] }]);
    await driver.deleteEndpoint(NET, EP);
    assert.deepEqual(
      seen.slice(1),
      [`removed ${EP}`],
      'DeleteEndpoint tells the hook, so that its pending work is dropped',
    );
    const throwing = new HostNetworkDriver({
      stateDir: dir,
      logger: silentLogger(),
      announce: false,
      owners: {
        created: () => {
          throw new Error('boom');
        },
        joined: () => undefined,
        removed: () => undefined,
      },
    });
    const reply = await throwing.createEndpoint({
      networkId: NET,
      endpointId: '3'.repeat(64),
      interface: { address: '10.1.0.6/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    assert.ok(reply.interface?.macAddress);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
