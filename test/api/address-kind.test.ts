import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressKind, declaredAux, PoolCreationWindows } from '../../src/api/address-kind.js';
import { FlatnetError } from '../../src/errors.js';

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

test('a RequestPool that declares aux addresses makes exactly those aux inside its window', () => {
  const declared = declaredAux({ 'aux-addresses': '10.20.0.5, fd00::05' });
  assert.deepEqual(declared, ['10.20.0.5', 'fd00::5']);
  assert.equal(declaredAux({}), undefined);
  assert.throws(
    () => declaredAux({ 'aux-addresses': '10.20.0.5,router' }),
    (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid',
  );
  assert.equal(addressKind({ address: '10.20.0.5', options: {}, poolInCreation: true, declared }), 'aux');
  assert.equal(addressKind({ address: 'fd00:0::5', options: {}, poolInCreation: true, declared }), 'aux');
  assert.equal(
    addressKind({ address: '10.20.0.6', options: {}, poolInCreation: true, declared }),
    'container',
    'a --ip right after network create',
  );
  assert.equal(addressKind({ address: '10.20.0.5', options: {}, poolInCreation: false, declared }), 'container');
  const w = new PoolCreationWindows();
  w.opened('p1', '10.20.0.0/24', declared);
  w.opened('p2', '10.30.0.0/24');
  assert.deepEqual([w.declaredFor('p1'), w.declaredFor('p2')], [declared, undefined]);
  w.networkCreated(['10.20.0.0/24']);
  assert.equal(w.declaredFor('p1'), undefined);
});
