import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRequest, compareExisting, planNetwork, type CreateNetworkRequest } from '../../src/cli/network-plan.js';
import type { NicFacts } from '../../src/hostnet/nic-facts.js';
import type { PoolSummary } from '../../src/ipam/contract.js';

function pool(subnet: string, gateway?: string): PoolSummary {
  return {
    subnet,
    family: 4,
    ...(gateway ? { gateway } : {}),
    ranges: [],
    hostRanges: [],
    reservations: [],
    claims: [],
    size: '0',
    used: 0,
    free: '0',
  };
}

/** A host whose eth0 holds `addresses` and whose default route goes via `gateways`. */
function nic(addresses: string[], gateways: string[] = [], holder = 'eth0'): NicFacts {
  return { found: true, nic: 'eth0', holder, addresses, gateways };
}
const ON_10_1 = nic(['10.1.0.11/16']);

const plan = (req: CreateNetworkRequest, pools: PoolSummary[], facts: NicFacts = ON_10_1) =>
  planNetwork(checkRequest(req), pools, facts);

test("the NIC's pool gives subnet and gateway; the docker argv carries every option", () => {
  const p = plan(
    {
      name: 'lan',
      driver: 'flatnet',
      parent: 'eth0',
      bridge: 'br0',
      mtu: '1500',
      ipRange: '192.168.0.128/25',
      dockerHost: 'unix:///run/d.sock',
    },
    [pool('192.168.0.0/24', '192.168.0.1')],
    nic(['192.168.0.11/24']),
  );
  assert.deepEqual(p.createArgs, [
    '-H',
    'unix:///run/d.sock',
    'network',
    'create',
    '-d',
    'flatnet',
    '--ipam-driver',
    'flatnet',
    '--subnet',
    '192.168.0.0/24',
    '--gateway',
    '192.168.0.1',
    '--ip-range',
    '192.168.0.128/25',
    '-o',
    'parent=eth0',
    '-o',
    'bridge=br0',
    '-o',
    'mtu=1500',
    'lan',
  ]);
});

test('--subnet picks its pool; none or an unknown one is refused; --subnet is matched in canonical form', () => {
  const pools = [pool('10.1.0.0/16'), pool('10.2.0.0/16')];
  const p = plan({ name: 'lan', driver: 'flatnet', subnet: '10.2.0.0/16' }, pools);
  assert.equal(p.subnet, '10.2.0.0/16');
  assert.equal(p.createArgs.includes('--gateway'), false, 'no gateway: Docker asks the IPAM');
  assert.equal(plan({ name: 'lan', driver: 'flatnet', subnet: '10.2.3.4/16' }, pools).subnet, '10.2.0.0/16');
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet' }, []), /ip-range add/);
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet', subnet: '10.3.0.0/16' }, pools),
    /no flatnet pool 10.3.0.0\/16/,
  );
  assert.throws(
    () => checkRequest({ name: 'lan', driver: 'flatnet', subnet: '10.3.0.0' }),
    /^FlatnetError: --subnet: .*CIDR/,
  );
});

test('--gateway and --ip-range must lie inside the subnet', () => {
  const pools = [pool('10.1.0.0/16', '10.1.0.1')];
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet', gateway: '10.9.0.1' }, pools),
    /--gateway 10.9.0.1 is not inside the subnet 10.1.0.0\/16/,
  );
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet', gateway: 'fd00::1' }, pools),
    /--gateway fd00::1 is not inside/,
  );
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', gateway: '10.1.0.1/16' }), /--gateway: /);
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet', ipRange: '10.2.0.0/24' }, pools),
    /--ip-range 10.2.0.0\/24 does not lie inside/,
  );
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet', ipRange: '10.0.0.0/8' }, pools),
    /--ip-range 10.0.0.0\/8 does not lie inside/,
    'larger than the subnet',
  );
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', ipRange: '10.1.0.0' }), /--ip-range: /);
  const ok = plan({ name: 'lan', driver: 'flatnet', gateway: '10.1.255.254', ipRange: '10.1.8.0/21' }, pools);
  assert.deepEqual(ok.createArgs.slice(-5), ['--gateway', '10.1.255.254', '--ip-range', '10.1.8.0/21', 'lan']);
});

test("names Docker refuses, and options the driver would refuse, are refused here with the CLI's flag names", () => {
  for (const name of ['.', '..', '-x', '', 'a b', 'lan/1', 'x'.repeat(129), 'bridge', 'host', 'none']) {
    assert.throws(
      () => checkRequest({ name, driver: 'flatnet' }),
      /Docker network name|predefines/,
      JSON.stringify(name),
    );
  }
  checkRequest({ name: 'lan.2_a-b', driver: 'flatnet' });
  for (const mtu of ['1e3', '9', '65536', '1500.0', 'big', '0x5dc', '']) {
    assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', mtu }), /--mtu .* is not valid/, mtu);
  }
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', parent: 'a-very-long-nic-name' }), /--parent/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', bridge: '..' }), /--bridge/);
  assert.throws(
    () => checkRequest({ name: 'lan', driver: 'flatnet', parent: 'br0', bridge: 'br0' }),
    /--parent and --bridge are both "br0"/,
  );
  assert.throws(
    () => checkRequest({ name: 'lan', driver: 'flatnet', dockerHost: '/var/run/docker.sock' }),
    /--docker-host/,
  );
});

test('an existing network is the same only with the same driver and subnet', () => {
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'same');
  assert.equal(compareExisting({ driver: 'bridge', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.9.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
});

test("without --subnet the pool is the subnet of the NIC's address; the gateway is the default route through it", () => {
  const pools = [pool('10.99.0.0/16'), pool('10.98.0.0/16')];
  const onC = plan({ name: 'lan', driver: 'flatnet', parent: 'eth0' }, pools, nic(['10.98.0.11/16'], ['10.98.0.1']));
  assert.equal(onC.subnet, '10.98.0.0/16');
  assert.equal(onC.gateway, '10.98.0.1');
  assert.equal(onC.from, "eth0's 10.98.0.11/16");
  assert.deepEqual(onC.createArgs, [
    'network',
    'create',
    '-d',
    'flatnet',
    '--ipam-driver',
    'flatnet',
    '--subnet',
    '10.98.0.0/16',
    '--gateway',
    '10.98.0.1',
    '-o',
    'parent=eth0',
    'lan',
  ]);
  const onA = plan({ name: 'lan', driver: 'flatnet' }, pools, nic(['10.99.0.11/16'], ['10.99.0.1']));
  assert.equal(onA.subnet, '10.99.0.0/16', "the same command on a host of the other segment takes that segment's pool");
  // After the takeover the addresses are on br0 (the holder): a second run decides the same.
  assert.equal(
    plan({ name: 'lan', driver: 'flatnet', parent: 'eth0' }, pools, nic(['10.98.0.11/16'], ['10.98.0.1'], 'br0'))
      .subnet,
    '10.98.0.0/16',
  );
  // A route via an address outside the subnet (or an IPv6 link-local router) is not a gateway of the pool.
  const outside = plan(
    { name: 'lan', driver: 'flatnet' },
    pools,
    nic(['10.98.0.11/16', 'fd77::11/64'], ['10.97.0.1', 'fe80::1']),
  );
  assert.equal(outside.gateway, undefined);
  assert.equal(outside.createArgs.includes('--gateway'), false, "no gateway: the IPAM picks the pool's");
  // An IPv6 or second address in the same pool, or one in no pool, does not make the choice ambiguous.
  assert.equal(
    plan(
      { name: 'lan', driver: 'flatnet' },
      pools,
      nic(['10.98.0.11/16', '10.98.0.12/16', 'fd77::11/64', '192.168.5.5/24']),
    ).subnet,
    '10.98.0.0/16',
  );
});

test("without --subnet: the pool's gateway is used, must agree with the route, and --gateway overrides both", () => {
  const pools = [pool('10.98.0.0/16', '10.98.0.1')];
  assert.equal(plan({ name: 'lan', driver: 'flatnet' }, pools, nic(['10.98.0.11/16'])).gateway, '10.98.0.1');
  assert.equal(
    plan({ name: 'lan', driver: 'flatnet' }, pools, nic(['10.98.0.11/16'], ['10.98.0.1'])).gateway,
    '10.98.0.1',
  );
  assert.throws(
    () => plan({ name: 'lan', driver: 'flatnet' }, pools, nic(['10.98.0.11/16'], ['10.98.0.254'])),
    /^FlatnetError: pool 10\.98\.0\.0\/16 names gateway 10\.98\.0\.1 but eth0's default route goes via 10\.98\.0\.254; give --gateway$/,
  );
  assert.equal(
    plan({ name: 'lan', driver: 'flatnet', gateway: '10.98.0.254' }, pools, nic(['10.98.0.11/16'], ['10.98.0.1']))
      .gateway,
    '10.98.0.254',
  );
});

test('without --subnet: no NIC, no address, no matching pool or several are one-line refusals naming what to give', () => {
  const pools = [pool('10.99.0.0/16'), pool('10.98.0.0/16')];
  const refused = (facts: NicFacts, pattern: RegExp, pp = pools): void => {
    assert.throws(
      () => plan({ name: 'lan', driver: 'flatnet' }, pp, facts),
      (err: Error) => {
        assert.equal(err.name, 'FlatnetError');
        assert.doesNotMatch(err.message, /\n/);
        assert.match(err.message, pattern);
        return true;
      },
    );
  };
  refused(
    { found: false },
    /^no default route names a NIC, so the subnet cannot be taken from it; give --parent NIC or --subnet$/,
  );
  refused(
    { found: false, parent: 'eth9' },
    /^no NIC eth9 on this host; give the LAN NIC with --parent, or the pool with --subnet$/,
  );
  refused(
    nic([]),
    /^eth0 has no global address to take the subnet from; give --subnet \(pools: 10\.99\.0\.0\/16, 10\.98\.0\.0\/16\)$/,
  );
  refused(nic([], [], 'br0'), /^eth0 \(addresses on br0\) has no global address/);
  refused(
    nic(['10.97.0.11/16', '192.168.1.2/24']),
    /^no flatnet pool is eth0's subnet 10\.97\.0\.0\/16, 192\.168\.1\.0\/24 \(pools: .*\); add this segment's range with `flatnet ip-range add`, or give --subnet$/,
  );
  // Same network, other prefix length: not the segment's subnet.
  refused(nic(['10.98.0.11/24']), /^no flatnet pool is eth0's subnet 10\.98\.0\.0\/24/);
  refused(
    nic(['10.99.0.11/16', '10.98.0.11/16']),
    /^eth0 has addresses in several flatnet pools \(10\.99\.0\.11\/16 in 10\.99\.0\.0\/16, 10\.98\.0\.11\/16 in 10\.98\.0\.0\/16\); choose one with --subnet$/,
  );
  refused(nic(['10.98.0.11/16']), /^no flatnet pool exists yet/, []);
  // With --subnet the NIC is not consulted at all.
  assert.equal(
    plan({ name: 'lan', driver: 'flatnet', subnet: '10.99.0.0/16' }, pools, { found: false }).subnet,
    '10.99.0.0/16',
  );
});
