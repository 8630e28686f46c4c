import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKind, PoolCreationWindows } from '../../src/api/address-kind.js';

const gw = { RequestAddressType: 'com.docker.network.gateway' };

test('the gateway marker makes a gateway request, with or without a preferred address', () => {
  assert.equal(addressKind({ address: '', options: gw, poolInCreation: true }), 'gateway');
  assert.equal(addressKind({ address: '10.20.0.1', options: gw, poolInCreation: false }), 'gateway');
});

test('a bare preferred address is aux while its pool awaits CreateNetwork, a container afterwards', () => {
  assert.equal(addressKind({ address: '10.20.0.5', options: {}, poolInCreation: true }), 'aux');
  assert.equal(addressKind({ address: '10.20.0.5', options: {}, poolInCreation: false }), 'container');
});

test('no address, a MAC or an endpoint name always mean a container', () => {
  assert.equal(addressKind({ address: '', options: {}, poolInCreation: true }), 'container');
  const mac = { 'com.docker.network.endpoint.macaddress': '02:42:0a:14:00:07' };
  assert.equal(addressKind({ address: '10.20.0.5', options: mac, poolInCreation: true }), 'container');
  const name = { 'com.docker.network.endpoint.name': 'web' };
  assert.equal(addressKind({ address: '10.20.0.5', options: name, poolInCreation: true }), 'container');
});

test('creation windows open on RequestPool and close on CreateNetwork of that CIDR or ReleasePool', () => {
  const w = new PoolCreationWindows();
  w.opened('p1', '10.20.0.0/24');
  w.opened('p2', '10.30.0.0/24');
  w.opened('p3', 'fd00::/64');
  w.networkCreated(['10.20.0.0/24', 'fd00::/64']);
  assert.equal(w.isOpen('p1'), false);
  assert.equal(w.isOpen('p3'), false);
  assert.equal(w.isOpen('p2'), true);
  w.released('p2');
  assert.equal(w.isOpen('p2'), false);
});

test('abandoned windows are bounded: the oldest is dropped first', () => {
  const w = new PoolCreationWindows(2);
  w.opened('p1', '10.1.0.0/24');
  w.opened('p2', '10.2.0.0/24');
  w.opened('p3', '10.3.0.0/24');
  assert.deepEqual([w.isOpen('p1'), w.isOpen('p2'), w.isOpen('p3')], [false, true, true]);
});
