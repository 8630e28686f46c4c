import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dockerCall, EP_ID, NET_ID, recordingHarness } from './app-harness.js';

const POOL_ID = 'FlatLocal/10.20.0.0/24';

/** Every call that carries a body, with one valid body to derive broken variants from. */
const VALID: Record<string, Record<string, unknown>> = {
  'IpamDriver.RequestPool': { AddressSpace: 'FlatLocal', Pool: '10.20.0.0/24', SubPool: '', Options: null, V6: false },
  'IpamDriver.ReleasePool': { PoolID: POOL_ID },
  'IpamDriver.RequestAddress': { PoolID: POOL_ID, Address: '', Options: null },
  'IpamDriver.ReleaseAddress': { PoolID: POOL_ID, Address: '10.20.0.7' },
  'NetworkDriver.CreateNetwork': {
    NetworkID: NET_ID,
    Options: null,
    IPv4Data: [{ AddressSpace: 'FlatLocal', Pool: '10.20.0.0/24' }],
    IPv6Data: [],
  },
  'NetworkDriver.DeleteNetwork': { NetworkID: NET_ID },
  'NetworkDriver.CreateEndpoint': {
    NetworkID: NET_ID,
    EndpointID: EP_ID,
    Interface: { Address: '10.20.0.7/24', AddressIPv6: '', MacAddress: '' },
    Options: null,
  },
  'NetworkDriver.EndpointOperInfo': { NetworkID: NET_ID, EndpointID: EP_ID },
  'NetworkDriver.DeleteEndpoint': { NetworkID: NET_ID, EndpointID: EP_ID },
  'NetworkDriver.Join': { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: '/var/run/docker/netns/x', Options: null },
  'NetworkDriver.Leave': { NetworkID: NET_ID, EndpointID: EP_ID },
  'NetworkDriver.ProgramExternalConnectivity': { NetworkID: NET_ID, EndpointID: EP_ID, Options: null },
  'NetworkDriver.RevokeExternalConnectivity': { NetworkID: NET_ID, EndpointID: EP_ID },
  'NetworkDriver.DiscoverNew': { DiscoveryType: 1, DiscoveryData: null },
  'NetworkDriver.DiscoverDelete': { DiscoveryType: 1, DiscoveryData: null },
};

/** The field whose absence or wrong type each call must refuse. */
const KEY_FIELD: Record<string, string> = {
  'IpamDriver.RequestPool': 'AddressSpace',
  'IpamDriver.ReleasePool': 'PoolID',
  'IpamDriver.RequestAddress': 'PoolID',
  'IpamDriver.ReleaseAddress': 'Address',
  'NetworkDriver.CreateNetwork': 'NetworkID',
  'NetworkDriver.DeleteNetwork': 'NetworkID',
  'NetworkDriver.CreateEndpoint': 'EndpointID',
  'NetworkDriver.EndpointOperInfo': 'EndpointID',
  'NetworkDriver.DeleteEndpoint': 'EndpointID',
  'NetworkDriver.Join': 'EndpointID',
  'NetworkDriver.Leave': 'NetworkID',
  'NetworkDriver.ProgramExternalConnectivity': 'EndpointID',
  'NetworkDriver.RevokeExternalConnectivity': 'NetworkID',
  'NetworkDriver.DiscoverNew': 'DiscoveryType',
  'NetworkDriver.DiscoverDelete': 'DiscoveryType',
};

async function expectRefused(method: string, body: unknown, errPattern: RegExp): Promise<void> {
  const h = recordingHarness();
  const res = await dockerCall(h.app, method, body).expect(400);
  assert.equal(typeof res.body.Err, 'string', `${method}: Err missing`);
  assert.match(res.body.Err as string, errPattern, `${method}: ${res.body.Err as string}`);
  assert.deepEqual([...h.ipam.calls, ...h.network.calls], [], `${method}: a driver was called`);
  // the app still serves after the refusal
  await dockerCall(h.app, 'Plugin.Activate').expect(200);
}

describe('malformed bodies: 400 with Err naming the problem, no driver call (checklist 31)', () => {
  for (const method of Object.keys(VALID)) {
    const key = KEY_FIELD[method] as string;
    test(`${method}: empty, not JSON, array, scalar, missing ${key}, wrong type of ${key}`, async () => {
      await expectRefused(method, { raw: '' }, /body is empty/);
      await expectRefused(method, { raw: '\n' }, /body is empty/);
      await expectRefused(method, { raw: '{"PoolID": ' }, /not valid JSON/);
      await expectRefused(method, { raw: 'garbage' }, /not valid JSON/);
      await expectRefused(method, [], /must be a JSON object/);
      await expectRefused(method, 'a string', /must be a JSON object/);
      await expectRefused(method, { raw: 'null' }, /must be a JSON object/);
      const missing = { ...VALID[method] };
      delete missing[key];
      await expectRefused(method, missing, new RegExp(`field ${key} is wrong`));
      const wrong = typeof VALID[method]?.[key] === 'number' ? 'one' : 42;
      await expectRefused(method, { ...VALID[method], [key]: wrong }, new RegExp(`field ${key} is wrong`));
    });
  }
});

describe('malformed values inside otherwise valid bodies', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '10.20.0.0', SubPool: '', Options: null, V6: false },
      /field Pool is wrong/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '10.20.0.0/33', SubPool: '', Options: null, V6: false },
      /field Pool is wrong/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '', SubPool: 'x', Options: null, V6: false },
      /field SubPool is wrong/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '', SubPool: '', Options: { a: 1 }, V6: false },
      /field Options\.a is wrong/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '', SubPool: '', Options: [], V6: false },
      /field Options is wrong/,
    ],
    [
      'IpamDriver.RequestPool',
      { AddressSpace: 'FlatLocal', Pool: '', SubPool: '', Options: null, V6: 'yes' },
      /field V6 is wrong/,
    ],
    ['IpamDriver.RequestAddress', { PoolID: '', Address: '', Options: null }, /field PoolID is wrong/],
    ['IpamDriver.RequestAddress', { PoolID: 'has space', Address: '', Options: null }, /field PoolID is wrong/],
    ['IpamDriver.RequestAddress', { PoolID: POOL_ID, Address: '10.20.0.300', Options: null }, /field Address is wrong/],
    ['IpamDriver.ReleaseAddress', { PoolID: POOL_ID, Address: '' }, /field Address is wrong/],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: '../../etc', Options: null, IPv4Data: [], IPv6Data: [] },
      /field NetworkID is wrong/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: NET_ID, Options: null, IPv4Data: {}, IPv6Data: [] },
      /field IPv4Data is wrong/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: NET_ID, Options: null, IPv4Data: [{ Pool: 'nope' }], IPv6Data: [] },
      /field IPv4Data\.0\.Pool is wrong/,
    ],
    [
      'NetworkDriver.CreateNetwork',
      { NetworkID: NET_ID, Options: { 'com.docker.network.generic': { mtu: {} } }, IPv4Data: [], IPv6Data: [] },
      /generic\.mtu is wrong/,
    ],
    [
      'NetworkDriver.CreateEndpoint',
      {
        NetworkID: NET_ID,
        EndpointID: EP_ID,
        Interface: { Address: '10.20.0.7', AddressIPv6: '', MacAddress: '' },
        Options: null,
      },
      /field Interface\.Address is wrong/,
    ],
    [
      'NetworkDriver.CreateEndpoint',
      {
        NetworkID: NET_ID,
        EndpointID: EP_ID,
        Interface: { Address: '', AddressIPv6: '', MacAddress: 'AkIKFAAH' },
        Options: null,
      },
      /field Interface\.MacAddress is wrong/,
    ],
    [
      'NetworkDriver.Join',
      { NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: 5, Options: null },
      /field SandboxKey is wrong/,
    ],
  ];
  for (const [method, body, pattern] of cases) {
    test(`${method} ${JSON.stringify(body).slice(0, 90)}`, async () => {
      await expectRefused(method, body, pattern);
    });
  }
});
