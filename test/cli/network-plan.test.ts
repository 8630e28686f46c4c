import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRequest, compareExisting, planNetwork, type CreateNetworkRequest } from '../../src/cli/network-plan.js';
import type { PoolSummary } from '../../src/ipam/contract.js';

function pool(subnet: string, gateway?: string): PoolSummary {
  return { subnet, family: 4, ...(gateway ? { gateway } : {}), ranges: [], hostRanges: [], reservations: [], claims: [], size: '0', used: 0, free: '0' };
}

const plan = (req: CreateNetworkRequest, pools: PoolSummary[]) => planNetwork(checkRequest(req), pools);

test('the single pool gives subnet and gateway; the docker argv carries every option', () => {
  const p = plan(
    { name: 'lan', driver: 'flatnet', parent: 'eth0', bridge: 'br0', mtu: '1500', ipRange: '192.168.0.128/25', dockerHost: 'unix:///run/d.sock' },
    [pool('192.168.0.0/24', '192.168.0.1')],
  );
  assert.deepEqual(p.createArgs, [
    '-H', 'unix:///run/d.sock', 'network', 'create', '-d', 'flatnet', '--ipam-driver', 'flatnet',
    '--subnet', '192.168.0.0/24', '--gateway', '192.168.0.1', '--ip-range', '192.168.0.128/25',
    '-o', 'parent=eth0', '-o', 'bridge=br0', '-o', 'mtu=1500', 'lan',
  ]);
});

test('several pools need --subnet; none or an unknown one is refused; --subnet is matched in canonical form', () => {
  const pools = [pool('10.1.0.0/16'), pool('10.2.0.0/16')];
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet' }, pools), /choose one with --subnet/);
  const p = plan({ name: 'lan', driver: 'flatnet', subnet: '10.2.0.0/16' }, pools);
  assert.equal(p.subnet, '10.2.0.0/16');
  assert.equal(p.createArgs.includes('--gateway'), false, 'no gateway: Docker asks the IPAM');
  assert.equal(plan({ name: 'lan', driver: 'flatnet', subnet: '10.2.3.4/16' }, pools).subnet, '10.2.0.0/16');
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet' }, []), /ip-range add/);
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet', subnet: '10.3.0.0/16' }, pools), /no flatnet pool 10.3.0.0\/16/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', subnet: '10.3.0.0' }), /^FlatnetError: --subnet: .*CIDR/);
});

test('--gateway and --ip-range must lie inside the subnet', () => {
  const pools = [pool('10.1.0.0/16', '10.1.0.1')];
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet', gateway: '10.9.0.1' }, pools), /--gateway 10.9.0.1 is not inside the subnet 10.1.0.0\/16/);
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet', gateway: 'fd00::1' }, pools), /--gateway fd00::1 is not inside/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', gateway: '10.1.0.1/16' }), /--gateway: /);
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet', ipRange: '10.2.0.0/24' }, pools), /--ip-range 10.2.0.0\/24 does not lie inside/);
  assert.throws(() => plan({ name: 'lan', driver: 'flatnet', ipRange: '10.0.0.0/8' }, pools), /--ip-range 10.0.0.0\/8 does not lie inside/, 'larger than the subnet');
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', ipRange: '10.1.0.0' }), /--ip-range: /);
  const ok = plan({ name: 'lan', driver: 'flatnet', gateway: '10.1.255.254', ipRange: '10.1.8.0/21' }, pools);
  assert.deepEqual(ok.createArgs.slice(-5), ['--gateway', '10.1.255.254', '--ip-range', '10.1.8.0/21', 'lan']);
});

test("names Docker refuses, and options the driver would refuse, are refused here with the CLI's flag names", () => {
  for (const name of ['.', '..', '-x', '', 'a b', 'lan/1', 'x'.repeat(129), 'bridge', 'host', 'none']) {
    assert.throws(() => checkRequest({ name, driver: 'flatnet' }), /Docker network name|predefines/, JSON.stringify(name));
  }
  checkRequest({ name: 'lan.2_a-b', driver: 'flatnet' });
  for (const mtu of ['1e3', '9', '65536', '1500.0', 'big', '0x5dc', '']) {
    assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', mtu }), /--mtu .* is not valid/, mtu);
  }
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', parent: 'a-very-long-nic-name' }), /--parent/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', bridge: '..' }), /--bridge/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', parent: 'br0', bridge: 'br0' }), /--parent and --bridge are both "br0"/);
  assert.throws(() => checkRequest({ name: 'lan', driver: 'flatnet', dockerHost: '/var/run/docker.sock' }), /--docker-host/);
});

test('an existing network is the same only with the same driver and subnet', () => {
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'same');
  assert.equal(compareExisting({ driver: 'bridge', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.9.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
});
