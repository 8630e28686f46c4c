import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { deriveEndpointMac, macFromHash, macFromIPv4 } from '../../src/netdriver/mac.js';
import type { CreateNetworkInput } from '../../src/netdriver/network-driver.js';
import { refuseUnsupportedNetwork } from '../../src/netdriver/network-request.js';
import { ADVERTISE_NMSGS_OPTION, parseNetworkOptions } from '../../src/netdriver/options.js';
import { orphanVeths } from '../../src/netdriver/reconcile.js';
import { DriverState } from '../../src/netdriver/state.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';

describe('endpoint MAC', () => {
  test('IPv4-derived: 0a:66 + the four address bytes, prefix ignored', () => {
    assert.equal(macFromIPv4('10.20.0.7/24'), '0a:66:0a:14:00:07');
    assert.equal(macFromIPv4('192.168.255.1'), '0a:66:c0:a8:ff:01');
  });
  test('locally administered unicast', () => {
    for (const mac of [macFromIPv4('10.0.0.1'), macFromHash('fd00::1')]) {
      const first = parseInt(mac.slice(0, 2), 16);
      assert.equal(first & 1, 0, 'unicast');
      assert.equal(first & 2, 2, 'locally administered');
    }
  });
  test('IPv6-only endpoints: stable hash, outside the IPv4-derived range', () => {
    const a = deriveEndpointMac('', 'fd00::0:7/64', 'e1');
    assert.equal(a, deriveEndpointMac('', 'fd00::7/64', 'e2'));
    assert.match(a, /^0a:67(:[0-9a-f]{2}){4}$/);
    assert.notEqual(a, deriveEndpointMac('', 'fd00::8/64', 'e1'));
  });
  test('IPv4 wins when both are present; no address: hash of the endpoint id', () => {
    assert.equal(deriveEndpointMac('10.20.0.7/24', 'fd00::7/64', 'e1'), '0a:66:0a:14:00:07');
    assert.equal(deriveEndpointMac('', '', 'abc'), macFromHash('abc'));
  });
});

describe('network options', () => {
  test('defaults: bridge br0, parent and mtu unset', () => {
    assert.deepEqual(parseNetworkOptions({}), { bridge: 'br0' });
  });
  test('parent, bridge, mtu', () => {
    assert.deepEqual(parseNetworkOptions({ parent: 'eth1', bridge: 'lanbr', mtu: '9000' }), {
      parent: 'eth1',
      bridge: 'lanbr',
      mtu: 9000,
    });
  });
  test('unknown keys are named in the error', () => {
    assert.throws(
      () => parseNetworkOptions({ parnet: 'eth0' }),
      (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid' && /-o parnet/.test(e.message),
    );
  });
  test('bad values are refused', () => {
    for (const o of <Record<string, string>[]>[
      { mtu: '15OO' },
      { mtu: '67' },
      { mtu: '70000' },
      { mtu: '1e3' },
      { parent: 'eth0;rm' },
      { bridge: 'x'.repeat(16) },
      { parent: 'br0' },
    ]) {
      assert.throws(() => parseNetworkOptions(o), FlatnetError, JSON.stringify(o));
    }
  });
});

describe('orphan veths', () => {
  const id = 'aabbccddeeff00112233';
  test('only flatnet-shaped names without an endpoint record', () => {
    const links = [
      'fnaabbccddeef',
      'fcaabbccddeef',
      'fn0123456789a',
      'fc0123456789a',
      'fnord',
      'eth0',
      'fnZZZZZZZZZZZ',
    ];
    assert.deepEqual(orphanVeths(links, [id]), ['fn0123456789a', 'fc0123456789a']);
  });
});

describe('state files', () => {
  test('atomic write leaves only the final file; records round-trip; missing reads undefined', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flatnet-state-'));
    try {
      await writeFileAtomic(join(dir, 'a.json'), '{"x":1}\n');
      await writeFileAtomic(join(dir, 'a.json'), '{"x":2}\n');
      assert.deepEqual(await readdir(dir), ['a.json']);
      assert.equal(await readFile(join(dir, 'a.json'), 'utf8'), '{"x":2}\n');

      const state = new DriverState(dir);
      await state.init();
      assert.equal(await state.getEndpoint('nope'), undefined);
      const rec = {
        endpointId: 'e1',
        networkId: 'n1',
        address: '10.0.0.7/24',
        addressIPv6: '',
        macAddress: '0a:66:0a:00:00:07',
        hostIfname: 'fne1',
        containerIfname: 'fce1',
        createdAt: 'now',
      };
      await state.putEndpoint(rec);
      assert.deepEqual(await state.getEndpoint('e1'), rec);
      assert.deepEqual(await state.endpointIds(), ['e1']);
      await state.deleteEndpoint('e1');
      await state.deleteEndpoint('e1');
      assert.deepEqual(await state.endpointIds(), []);
      await assert.rejects(state.getNetwork('../etc'), FlatnetError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('networks flatnet refuses at CreateNetwork', () => {
  const input = (over: Partial<CreateNetworkInput> = {}): CreateNetworkInput => ({
    networkId: 'n1',
    generic: {},
    internal: false,
    enableIpv6: false,
    ipv4Data: [{ addressSpace: 'FlatLocal', pool: '10.20.0.0/24', auxAddresses: {} }],
    ipv6Data: [],
    ...over,
  });
  test("flatnet's own address spaces pass, local and global", () => {
    refuseUnsupportedNetwork(input());
    refuseUnsupportedNetwork(
      input({ ipv4Data: [{ addressSpace: 'FlatGlobal', pool: '10.20.0.0/24', auxAddresses: {} }] }),
    );
  });
  test('a pool of another IPAM driver (v4 or v6) is refused with the flag that fixes it', () => {
    for (const over of [
      { ipv4Data: [{ addressSpace: 'LocalDefault', pool: '172.18.0.0/16', auxAddresses: {} }] },
      { ipv6Data: [{ addressSpace: 'LocalDefault', pool: 'fd00::/64', auxAddresses: {} }] },
      { ipv4Data: [{ addressSpace: '', pool: '10.20.0.0/24', auxAddresses: {} }] },
    ]) {
      assert.throws(
        () => refuseUnsupportedNetwork(input(over)),
        (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid' && /--ipam-driver flatnet/.test(e.message),
      );
    }
  });
  test('--internal is refused, never ignored', () => {
    assert.throws(() => refuseUnsupportedNetwork(input({ internal: true })), /--internal is not supported/);
  });
});

describe("Docker's announcement option", () => {
  test('the option passes the -o parser; a value that is no count is refused', () => {
    assert.deepEqual(parseNetworkOptions({ [ADVERTISE_NMSGS_OPTION]: '0' }), { bridge: 'br0' });
    assert.throws(
      () => parseNetworkOptions({ [ADVERTISE_NMSGS_OPTION]: 'many' }),
      /advertise_addr_nmsgs=many is not valid/,
    );
  });
});
