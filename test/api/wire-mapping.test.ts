import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createServer } from 'node:http';
import request from 'supertest';
import { httpOptionsFor } from '../../src/api/plugin-app.js';
import { BODY_LIMIT_BYTES } from '../../src/api/plugin-calls.js';
import { FlatnetError } from '../../src/errors.js';
import { registry } from '../../src/observability/metrics.js';
import { dockerCall, EP_ID, NET_ID, recordingHarness } from './app-harness.js';

const POOL_ID = 'FlatLocal/10.20.0.0/24';

describe('handshake and capability calls (checklist 1, 2, 5, 6)', () => {
  test('Activate answers an empty body with no Content-Type and an empty Host', async () => {
    const h = recordingHarness();
    const res = await dockerCall(h.app, 'Plugin.Activate').expect(200);
    assert.deepEqual(res.body, { Implements: ['IpamDriver', 'NetworkDriver'] });
  });

  test('Activate also answers with Host plugin.moby.localhost and an odd Content-Type', async () => {
    const h = recordingHarness();
    const res = await request(h.app)
      .post('/Plugin.Activate')
      .set('Host', 'plugin.moby.localhost')
      .set('Content-Type', 'text/plain')
      .send('')
      .expect(200);
    assert.deepEqual(res.body, { Implements: ['IpamDriver', 'NetworkDriver'] });
  });

  test('capabilities and default address spaces accept an empty body and are stable', async () => {
    const h = recordingHarness();
    const ipamCaps = await dockerCall(h.app, 'IpamDriver.GetCapabilities').expect(200);
    assert.deepEqual(ipamCaps.body, { RequiresMACAddress: false, RequiresRequestReplay: false });
    const netCaps = await dockerCall(h.app, 'NetworkDriver.GetCapabilities').expect(200);
    // global connectivity, as macvlan/ipvlan report: swarm then gossips service records (dnsrr names resolve).
    assert.deepEqual(netCaps.body, { Scope: 'local', ConnectivityScope: 'global' });
    const spaces = await dockerCall(h.app, 'IpamDriver.GetDefaultAddressSpaces').expect(200);
    assert.deepEqual(spaces.body, { LocalDefaultAddressSpace: 'FlatLocal', GlobalDefaultAddressSpace: 'FlatGlobal' });
    const again = await dockerCall(h.app, 'IpamDriver.GetDefaultAddressSpaces').expect(200);
    assert.deepEqual(again.body, spaces.body);
    assert.equal(h.ipam.calls.length + h.network.calls.length, 0);
  });
});

describe('IpamDriver mapping', () => {
  test('RequestPool: wire names to the contract, null Options to {}, reply in Docker casing', async () => {
    const h = recordingHarness();
    h.ipam.poolResult = {
      poolId: POOL_ID,
      pool: '10.20.0.0/24',
      data: { 'com.docker.network.gateway': '10.20.0.1/24' },
    };
    const res = await dockerCall(h.app, 'IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: '10.20.0.0/24',
      SubPool: '10.20.0.128/25',
      Options: null,
      V6: false,
    }).expect(200);
    assert.deepEqual(res.body, {
      PoolID: POOL_ID,
      Pool: '10.20.0.0/24',
      Data: { 'com.docker.network.gateway': '10.20.0.1/24' },
    });
    assert.deepEqual(h.ipam.calls, [
      {
        method: 'requestPool',
        args: [{ addressSpace: 'FlatLocal', pool: '10.20.0.0/24', subPool: '10.20.0.128/25', options: {}, v6: false }],
      },
    ]);
  });

  test('RequestPool passes --ipam-opt strings and V6', async () => {
    const h = recordingHarness();
    await dockerCall(h.app, 'IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: '',
      SubPool: '',
      Options: { a: 'b' },
      V6: true,
    }).expect(200);
    assert.deepEqual(h.ipam.calls[0]?.args[0], {
      addressSpace: 'FlatLocal',
      pool: '',
      subPool: '',
      options: { a: 'b' },
      v6: true,
    });
  });

  test('RequestAddress kinds: gateway marker, aux during network create, container with --ip afterwards', async () => {
    const h = recordingHarness();
    await dockerCall(h.app, 'IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: '10.20.0.0/24',
      SubPool: '',
      Options: null,
      V6: false,
    }).expect(200);
    const gw = await dockerCall(h.app, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '',
      Options: { RequestAddressType: 'com.docker.network.gateway' },
    }).expect(200);
    assert.deepEqual(gw.body, { Address: '10.20.0.7/24', Data: {} });
    await dockerCall(h.app, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '10.20.0.5',
      Options: null,
    }).expect(200);
    await dockerCall(h.app, 'NetworkDriver.CreateNetwork', {
      NetworkID: NET_ID,
      Options: null,
      IPv4Data: [
        {
          AddressSpace: 'FlatLocal',
          Pool: '10.20.0.0/24',
          Gateway: '10.20.0.1/24',
          AuxAddresses: { h1: '10.20.0.5/24' },
        },
      ],
      IPv6Data: [],
    }).expect(200);
    await dockerCall(h.app, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '10.20.0.9',
      Options: null,
    }).expect(200);
    await dockerCall(h.app, 'IpamDriver.RequestAddress', { PoolID: POOL_ID, Address: '', Options: null }).expect(200);
    const kinds = h.ipam.calls.filter((c) => c.method === 'requestAddress').map((c) => c.args[0]);
    assert.deepEqual(kinds, [
      { poolId: POOL_ID, address: '', kind: 'gateway' },
      { poolId: POOL_ID, address: '10.20.0.5', kind: 'aux' },
      { poolId: POOL_ID, address: '10.20.0.9', kind: 'container' },
      { poolId: POOL_ID, address: '', kind: 'container' },
    ]);
  });

  test('RequestAddress takes the MAC and endpoint name from Options', async () => {
    const h = recordingHarness();
    await dockerCall(h.app, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '',
      Options: {
        'com.docker.network.endpoint.macaddress': '02:42:0a:14:00:07',
        'com.docker.network.endpoint.name': 'web1',
      },
    }).expect(200);
    assert.deepEqual(h.ipam.calls[0]?.args[0], {
      poolId: POOL_ID,
      address: '',
      kind: 'container',
      macAddress: '02:42:0a:14:00:07',
      endpointName: 'web1',
    });
  });

  test('ReleaseAddress and ReleasePool answer {} and pass plain ids (a CIDR address loses its prefix)', async () => {
    const h = recordingHarness();
    const a = await dockerCall(h.app, 'IpamDriver.ReleaseAddress', { PoolID: POOL_ID, Address: '10.20.0.7' }).expect(
      200,
    );
    assert.deepEqual(a.body, {});
    await dockerCall(h.app, 'IpamDriver.ReleaseAddress', { PoolID: POOL_ID, Address: '10.20.0.8/24' }).expect(200);
    const p = await dockerCall(h.app, 'IpamDriver.ReleasePool', { PoolID: POOL_ID }).expect(200);
    assert.deepEqual(p.body, {});
    assert.deepEqual(h.ipam.calls, [
      { method: 'releaseAddress', args: [POOL_ID, '10.20.0.7'] },
      { method: 'releaseAddress', args: [POOL_ID, '10.20.0.8'] },
      { method: 'releasePool', args: [POOL_ID] },
    ]);
  });
});

describe('NetworkDriver mapping (checklist 4, 18, 25, 26, 28)', () => {
  test('CreateNetwork: null maps and IPv6Data [] accepted; generic options, internal, IPv4Data mapped', async () => {
    const h = recordingHarness();
    const res = await dockerCall(h.app, 'NetworkDriver.CreateNetwork', {
      NetworkID: NET_ID,
      Options: {
        'com.docker.network.enable_ipv6': false,
        'com.docker.network.internal': true,
        'com.docker.network.generic': { mtu: '1400', parent: 'eth0' },
      },
      IPv4Data: [{ AddressSpace: 'FlatLocal', Pool: '10.20.0.0/24', Gateway: '10.20.0.1/24', AuxAddresses: null }],
      IPv6Data: [],
    }).expect(200);
    assert.deepEqual(res.body, {});
    assert.deepEqual(h.network.calls[0]?.args[0], {
      networkId: NET_ID,
      generic: { mtu: '1400', parent: 'eth0' },
      internal: true,
      enableIpv6: false,
      ipv4Data: [{ addressSpace: 'FlatLocal', pool: '10.20.0.0/24', gateway: '10.20.0.1/24', auxAddresses: {} }],
      ipv6Data: [],
    });
  });

  test('CreateNetwork with Options null and no Gateway', async () => {
    const h = recordingHarness();
    await dockerCall(h.app, 'NetworkDriver.CreateNetwork', {
      NetworkID: NET_ID,
      Options: null,
      IPv4Data: [{ AddressSpace: 'FlatLocal', Pool: '10.20.0.0/24' }],
      IPv6Data: null,
    }).expect(200);
    assert.deepEqual(h.network.calls[0]?.args[0], {
      networkId: NET_ID,
      generic: {},
      internal: false,
      enableIpv6: false,
      ipv4Data: [{ addressSpace: 'FlatLocal', pool: '10.20.0.0/24', auxAddresses: {} }],
      ipv6Data: [],
    });
  });

  test('DeleteNetwork repeated answers {} each time', async () => {
    const h = recordingHarness();
    for (let i = 0; i < 2; i++) {
      const res = await dockerCall(h.app, 'NetworkDriver.DeleteNetwork', { NetworkID: NET_ID }).expect(200);
      assert.deepEqual(res.body, {});
    }
    assert.deepEqual(
      h.network.calls.map((c) => c.args),
      [[NET_ID], [NET_ID]],
    );
  });

  test('CreateEndpoint: Interface null in the reply when the driver adds nothing', async () => {
    const h = recordingHarness();
    const res = await dockerCall(h.app, 'NetworkDriver.CreateEndpoint', {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      Interface: { Address: '10.20.0.7/24', AddressIPv6: '', MacAddress: '02:42:0a:14:00:07' },
      Options: { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }] },
    }).expect(200);
    assert.equal(res.text, '{"Interface":null}');
    assert.deepEqual(h.network.calls[0]?.args[0], {
      networkId: NET_ID,
      endpointId: EP_ID,
      interface: { address: '10.20.0.7/24', addressIPv6: '', macAddress: '02:42:0a:14:00:07' },
      options: { 'com.docker.network.endpoint.exposedports': [{ Proto: 6, Port: 80 }] },
    });
  });

  test('CreateEndpoint: a driver-chosen MAC goes back as Interface.MacAddress only', async () => {
    const h = recordingHarness();
    h.network.endpointResult = { interface: { macAddress: 'ee:ee:0a:14:00:07' } };
    const res = await dockerCall(h.app, 'NetworkDriver.CreateEndpoint', {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      Interface: { Address: '10.20.0.7/24', AddressIPv6: '', MacAddress: '' },
      Options: null,
    }).expect(200);
    assert.equal(res.text, '{"Interface":{"MacAddress":"ee:ee:0a:14:00:07"}}');
  });

  test('Join: Docker casing, bare-IP Gateway even from a CIDR, routes with NextHop only for type 0', async () => {
    const h = recordingHarness();
    h.network.joinResult = {
      srcName: 'fnb1234567',
      dstPrefix: 'eth',
      gateway: '10.20.0.1/24',
      gatewayIPv6: '',
      staticRoutes: [
        { destination: '10.99.0.0/16', routeType: 0, nextHop: '10.20.0.254' },
        { destination: '169.254.1.1/32', routeType: 1 },
      ],
      disableGatewayService: false,
    };
    const res = await dockerCall(h.app, 'NetworkDriver.Join', {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      SandboxKey: '/var/run/docker/netns/0123456789ab',
      Options: null,
    }).expect(200);
    assert.deepEqual(res.body, {
      InterfaceName: { SrcName: 'fnb1234567', DstPrefix: 'eth' },
      Gateway: '10.20.0.1',
      GatewayIPv6: '',
      StaticRoutes: [
        { Destination: '10.99.0.0/16', RouteType: 0, NextHop: '10.20.0.254' },
        { Destination: '169.254.1.1/32', RouteType: 1 },
      ],
      DisableGatewayService: false,
    });
    assert.deepEqual(h.network.calls[0]?.args[0], {
      networkId: NET_ID,
      endpointId: EP_ID,
      sandboxKey: '/var/run/docker/netns/0123456789ab',
      options: {},
    });
  });

  test('Join with no interface to move answers InterfaceName null', async () => {
    const h = recordingHarness();
    h.network.joinResult = { ...h.network.joinResult, srcName: '' };
    const res = await dockerCall(h.app, 'NetworkDriver.Join', {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      SandboxKey: '',
      Options: {},
    }).expect(200);
    assert.equal(res.body.InterfaceName, null);
  });

  test('EndpointOperInfo answers {"Value":{}}; Leave and DeleteEndpoint {}', async () => {
    const h = recordingHarness();
    const ref = { NetworkID: NET_ID, EndpointID: EP_ID };
    assert.equal((await dockerCall(h.app, 'NetworkDriver.EndpointOperInfo', ref).expect(200)).text, '{"Value":{}}');
    assert.deepEqual((await dockerCall(h.app, 'NetworkDriver.Leave', ref).expect(200)).body, {});
    assert.deepEqual((await dockerCall(h.app, 'NetworkDriver.DeleteEndpoint', ref).expect(200)).body, {});
    assert.deepEqual(
      h.network.calls.map((c) => c.method),
      ['endpointOperInfo', 'leave', 'deleteEndpoint'],
    );
    assert.deepEqual(
      h.network.calls.map((c) => c.args),
      [
        [NET_ID, EP_ID],
        [NET_ID, EP_ID],
        [NET_ID, EP_ID],
      ],
    );
  });

  test('Program/RevokeExternalConnectivity answer {} repeatedly and touch no driver', async () => {
    const h = recordingHarness();
    for (let i = 0; i < 2; i++) {
      const p = await dockerCall(h.app, 'NetworkDriver.ProgramExternalConnectivity', {
        NetworkID: NET_ID,
        EndpointID: EP_ID,
        Options: null,
      }).expect(200);
      assert.equal(p.text, '{}');
      const r = await dockerCall(h.app, 'NetworkDriver.RevokeExternalConnectivity', {
        NetworkID: NET_ID,
        EndpointID: EP_ID,
      }).expect(200);
      assert.equal(r.text, '{}');
    }
    assert.equal(h.network.calls.length, 0);
  });

  test('DiscoverNew/DiscoverDelete answer {}', async () => {
    const h = recordingHarness();
    const body = { DiscoveryType: 1, DiscoveryData: { Address: '10.99.0.11', BindAddress: '0.0.0.0', Self: true } };
    assert.equal((await dockerCall(h.app, 'NetworkDriver.DiscoverNew', body).expect(200)).text, '{}');
    assert.equal((await dockerCall(h.app, 'NetworkDriver.DiscoverDelete', body).expect(200)).text, '{}');
  });

  test('AllocateNetwork/FreeNetwork are refused with a clear Err', async () => {
    const h = recordingHarness();
    for (const m of ['NetworkDriver.AllocateNetwork', 'NetworkDriver.FreeNetwork']) {
      const res = await dockerCall(h.app, m, { NetworkID: NET_ID, Options: {}, IPv4Data: [], IPv6Data: [] }).expect(
        400,
      );
      assert.match(String(res.body.Err), /local-scope driver: swarm-scoped networks are not supported/);
    }
  });
});

describe('errors, unknown paths, logs and metrics (checklist 3)', () => {
  test('unknown paths get 404 with Err', async () => {
    const h = recordingHarness();
    const res = await dockerCall(h.app, 'NetworkDriver.GwAllocCheck', { Options: {} }).expect(404);
    assert.match(String(res.body.Err), /does not implement NetworkDriver\.GwAllocCheck/);
    const get = await request(h.app).get('/Plugin.Activate').expect(404);
    assert.ok(String(get.body.Err).length > 0);
  });

  test('FlatnetError invalid → 400, other kinds → 500, always {"Err": message}', async () => {
    const h = recordingHarness();
    h.ipam.failWith = new FlatnetError('invalid', 'the PoolID is not one flatnet gave out');
    const bad = await dockerCall(h.app, 'IpamDriver.ReleasePool', { PoolID: 'nope' }).expect(400);
    assert.deepEqual(bad.body, { Err: 'the PoolID is not one flatnet gave out' });
    h.ipam.failWith = new FlatnetError('conflict', '10.20.0.9 is already assigned');
    const taken = await dockerCall(h.app, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '10.20.0.9',
      Options: null,
    }).expect(500);
    assert.deepEqual(taken.body, { Err: '10.20.0.9 is already assigned' });
    h.ipam.failWith = new FlatnetError('unavailable', 'etcd did not answer within 5000 ms');
    await dockerCall(h.app, 'IpamDriver.RequestAddress', { PoolID: POOL_ID, Address: '', Options: null }).expect(500);
  });

  test('a non-FlatnetError gives a generic 500 Err and its details go to the log only', async () => {
    const h = recordingHarness();
    h.network.failWith = new TypeError('secret internals: x is undefined');
    const res = await dockerCall(h.app, 'NetworkDriver.Join', {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      SandboxKey: '',
      Options: null,
    }).expect(500);
    assert.equal(res.body.Err, 'NetworkDriver.Join: internal error in flatnet; the plugin log has the details');
    const line = h.logLines().find((l) => l.method === 'NetworkDriver.Join');
    assert.ok(line);
    assert.match(JSON.stringify(line.err), /secret internals/);
  });

  test('one log line per call with method, status, duration and ids', async () => {
    const h = recordingHarness();
    await dockerCall(h.app, 'IpamDriver.RequestAddress', { PoolID: POOL_ID, Address: '', Options: null }).expect(200);
    h.ipam.failWith = new FlatnetError('exhausted', 'no free address is left in 10.20.0.0/24');
    await dockerCall(h.app, 'IpamDriver.RequestAddress', { PoolID: POOL_ID, Address: '', Options: null }).expect(500);
    const lines = h.logLines().filter((l) => l.method === 'IpamDriver.RequestAddress');
    assert.equal(lines.length, 2);
    const [ok, failed] = lines;
    assert.equal(ok?.status, 200);
    assert.equal(typeof ok?.duration_ms, 'number');
    assert.equal(ok?.pool_id, POOL_ID);
    assert.equal(ok?.address, '10.20.0.7/24');
    assert.equal(failed?.status, 500);
    assert.equal(failed?.error, 'no free address is left in 10.20.0.0/24');
    assert.equal(failed?.error_kind, 'exhausted');
  });

  test('calls are counted by method and outcome', async () => {
    const h = recordingHarness();
    const count = async (): Promise<number> => {
      const m = await registry.getSingleMetric('flatnet_plugin_calls_total')?.get();
      return (
        m?.values.find((v) => v.labels.method === 'IpamDriver.ReleasePool' && v.labels.outcome === 'ok')?.value ?? 0
      );
    };
    const before = await count();
    await dockerCall(h.app, 'IpamDriver.ReleasePool', { PoolID: POOL_ID }).expect(200);
    assert.equal(await count(), before + 1);
  });
});

describe('the express app on the wire (issue 8: express serves the plugin API)', () => {
  test('Err answers are JSON, never an HTML page, with no x-powered-by or etag', async () => {
    const h = recordingHarness();
    for (const res of [
      await dockerCall(h.app, 'NetworkDriver.NoSuchMethod').expect(404),
      await request(h.app).put('/IpamDriver.RequestPool').expect(404),
      await request(h.app).get('/').expect(404),
      await dockerCall(h.app, 'IpamDriver.RequestPool', { raw: '{"AddressSpace": ' }).expect(400),
    ]) {
      assert.match(String(res.headers['content-type']), /^application\/json/);
      assert.equal(typeof res.body.Err, 'string');
      assert.doesNotMatch(res.text, /<html|<pre|<!DOCTYPE/i);
      assert.equal(res.headers['x-powered-by'], undefined);
      assert.equal(res.headers.etag, undefined);
    }
    const ok = await dockerCall(h.app, 'Plugin.Activate').expect(200);
    assert.equal(ok.headers['x-powered-by'], undefined);
    assert.equal(ok.headers.etag, undefined);
  });

  test('an oversized body gets 413 with Err, reaches no driver, and the app serves on', async () => {
    const h = recordingHarness();
    const big = `{"PoolID":"${'x'.repeat(BODY_LIMIT_BYTES + 10)}","Address":"","Options":null}`;
    const res = await dockerCall(h.app, 'IpamDriver.RequestAddress', { raw: big }).expect(413);
    assert.match(
      String(res.body.Err),
      /IpamDriver\.RequestAddress: the request body could not be read \(the body is larger than/,
    );
    assert.deepEqual(h.ipam.calls, []);
    await dockerCall(h.app, 'Plugin.Activate').expect(200);
  });

  test('a query string changes nothing (query parsing is off)', async () => {
    const h = recordingHarness();
    const res = await request(h.app)
      .post('/Plugin.Activate?x=1&y[z]=2')
      .set('Host', '')
      .send(Buffer.alloc(0))
      .expect(200);
    assert.deepEqual(res.body, { Implements: ['IpamDriver', 'NetworkDriver'] });
  });

  test('served by node:http with httpOptionsFor(app): requests already carry the app prototypes, answers unchanged', async () => {
    const h = recordingHarness();
    const app = h.app;
    let sawAppPrototype = false;
    const server = createServer({ ...httpOptionsFor(app), requireHostHeader: false }, (req, res) => {
      sawAppPrototype = Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response;
      app(req, res);
    });
    const activate = await dockerCall(server, 'Plugin.Activate').expect(200);
    assert.deepEqual(activate.body, { Implements: ['IpamDriver', 'NetworkDriver'] });
    assert.ok(sawAppPrototype, 'requests were not created with the app prototypes');
    const res = await dockerCall(server, 'IpamDriver.RequestAddress', {
      PoolID: POOL_ID,
      Address: '',
      Options: null,
    }).expect(200);
    assert.equal(res.body.Address, '10.20.0.7/24');
    const missing = await dockerCall(server, 'IpamDriver.Nope').expect(404);
    assert.match(String(missing.body.Err), /does not implement IpamDriver\.Nope/);
  });
});
