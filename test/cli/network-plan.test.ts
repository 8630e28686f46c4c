import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareExisting, planNetwork } from '../../src/cli/network-plan.js';
import type { PoolSummary } from '../../src/ipam/contract.js';

function pool(subnet: string, gateway?: string): PoolSummary {
  return { subnet, family: 4, ...(gateway ? { gateway } : {}), ranges: [], hostRanges: [], reservations: [], claims: [], size: '0', used: 0, free: '0' };
}

test('the single pool gives subnet and gateway; the docker argv carries every option', () => {
  const plan = planNetwork(
    { name: 'lan', driver: 'flatnet', parent: 'eth0', bridge: 'br0', mtu: '1500', ipRange: '192.168.0.128/25', dockerHost: 'unix:///run/d.sock' },
    [pool('192.168.0.0/24', '192.168.0.1')],
  );
  assert.deepEqual(plan.createArgs, [
    '-H', 'unix:///run/d.sock', 'network', 'create', '-d', 'flatnet', '--ipam-driver', 'flatnet',
    '--subnet', '192.168.0.0/24', '--gateway', '192.168.0.1', '--ip-range', '192.168.0.128/25',
    '-o', 'parent=eth0', '-o', 'bridge=br0', '-o', 'mtu=1500', 'lan',
  ]);
});

test('several pools need --subnet; none or an unknown one is refused', () => {
  const pools = [pool('10.1.0.0/16'), pool('10.2.0.0/16')];
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet' }, pools), /choose one with --subnet/);
  const plan = planNetwork({ name: 'lan', driver: 'flatnet', subnet: '10.2.0.0/16' }, pools);
  assert.equal(plan.subnet, '10.2.0.0/16');
  assert.equal(plan.createArgs.includes('--gateway'), false, 'no gateway: Docker asks the IPAM');
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet' }, []), /ip-range add/);
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet', subnet: '10.3.0.0/16' }, pools), /no flatnet pool 10.3.0.0\/16/);
});

test('bad names, MTUs and docker hosts are refused before anything runs', () => {
  const pools = [pool('10.1.0.0/16')];
  assert.throws(() => planNetwork({ name: '-x', driver: 'flatnet' }, pools), /not a valid Docker network name/);
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet', parent: 'a-very-long-nic-name' }, pools), /--parent/);
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet', mtu: '9' }, pools), /--mtu/);
  assert.throws(() => planNetwork({ name: 'lan', driver: 'flatnet', dockerHost: '/var/run/docker.sock' }, pools), /--docker-host/);
});

test('an existing network is the same only with the same driver and subnet', () => {
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'same');
  assert.equal(compareExisting({ driver: 'bridge', subnets: ['10.1.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
  assert.equal(compareExisting({ driver: 'flatnet', subnets: ['10.9.0.0/16'] }, 'flatnet', '10.1.0.0/16'), 'different');
});
