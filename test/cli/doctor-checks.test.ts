import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkBridge,
  checkDocker,
  checkEtcd,
  checkFirewall,
  checkMtu,
  checkSocket,
  formatCheck,
  parseForwardChain,
  type BridgeFact,
} from '../../src/cli/doctor/checks.js';

const nic = { name: 'eth0', mtu: 1500, addresses: [], kind: undefined, master: 'br0' };
const healthyBridge: BridgeFact = {
  name: 'br0',
  bridge: { name: 'br0', mtu: 1500, addresses: ['10.0.0.5/24'], kind: 'bridge' },
  members: [
    { name: 'eth0', mtu: 1500, addresses: [], master: 'br0' },
    { name: 'fn1a2b3c4d5e6', mtu: 1500, addresses: [], kind: 'veth', master: 'br0' },
  ],
};

test('etcd: reachable passes; refused credentials and unreachable fail with different fixes', () => {
  assert.equal(checkEtcd({ ok: true, endpoints: ['http://e:2379'], auth: true }).status, 'pass');
  const auth = checkEtcd({ ok: false, endpoints: ['http://e:2379'], reason: 'bad', authRefused: true });
  assert.equal(auth.status, 'fail');
  assert.match(auth.fix ?? '', /PASSWORD/);
  const down = checkEtcd({ ok: false, endpoints: ['http://e:2379'], reason: 'refused', authRefused: false });
  assert.match(down.fix ?? '', /start etcd/);
});

test('socket: missing, stale, foreign and healthy', () => {
  assert.match(checkSocket({ path: '/s', exists: false }).fix ?? '', /systemctl start flatnet/);
  assert.match(
    checkSocket({ path: '/s', exists: true, activate: { ok: false, error: 'ECONNREFUSED' } }).fix ?? '',
    /restart/,
  );
  assert.equal(
    checkSocket({ path: '/s', exists: true, activate: { ok: true, implements: ['VolumeDriver'] } }).status,
    'fail',
  );
  assert.equal(
    checkSocket({ path: '/s', exists: true, activate: { ok: true, implements: ['IpamDriver', 'NetworkDriver'] } })
      .status,
    'pass',
  );
});

test('bridge: holds the NIC and its address, or says what is wrong', () => {
  assert.equal(checkBridge(healthyBridge).status, 'pass');
  assert.match(checkBridge({ name: 'br0', members: [] }).detail, /does not exist/);
  const addrLeft = { ...healthyBridge, members: [{ ...nic, addresses: ['10.0.0.5/24'] }] };
  assert.match(checkBridge(addrLeft).fix ?? '', /ip addr del 10.0.0.5\/24 dev eth0/);
  const noAddr: BridgeFact = { ...healthyBridge, bridge: { name: 'br0', mtu: 1500, addresses: [] } };
  assert.match(checkBridge(noAddr).fix ?? '', /bridge restore/);
  const outside: BridgeFact = {
    name: 'br0',
    requestedParent: 'eth1',
    bridge: healthyBridge.bridge,
    members: [],
    parentOutside: { name: 'eth1', mtu: 1500, addresses: ['10.0.0.9/24'] },
  };
  assert.match(checkBridge(outside).detail, /eth1 is not in br0/);
  const twoNics = { ...healthyBridge, members: [nic, { ...nic, name: 'eth1' }] };
  assert.match(checkBridge(twoNics).fix ?? '', /--parent/);
  // a veth that only starts with "fn" is not one of flatnet's: it counts as a second NIC
  const foreignVeth = {
    ...healthyBridge,
    members: [nic, { name: 'fntest0', mtu: 1500, addresses: [], kind: 'veth', master: 'br0' }],
  };
  assert.match(checkBridge(foreignVeth).detail, /holds no NIC \(or several\)/);
  assert.equal(checkBridge({ ...foreignVeth, requestedParent: 'eth0' }).status, 'pass');
});

test('mtu: bridge, parent and fn veths must agree', () => {
  assert.equal(checkMtu(healthyBridge).status, 'pass');
  const off = {
    ...healthyBridge,
    members: [nic, { name: 'fnabc00000000', mtu: 1400, addresses: [], kind: 'veth', master: 'br0' }],
  };
  const r = checkMtu(off);
  assert.equal(r.status, 'fail');
  assert.equal(r.fix, 'ip link set dev fnabc00000000 mtu 1500');
  assert.equal(checkMtu({ name: 'br0', members: [] }).status, 'skip');
  // the kernel lowers a bridge to its smallest port: the port is fixed before the bridge
  const lowered = { ...off, bridge: { name: 'br0', mtu: 1400, addresses: ['10.0.0.5/24'] } };
  assert.equal(checkMtu(lowered).fix, 'ip link set dev fnabc00000000 mtu 1500 && ip link set dev br0 mtu 1500');
});

test('forwarding: DROP policy with br_netfilter needs the flatnet rule', () => {
  const drop = parseForwardChain('-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n', 'br0');
  assert.deepEqual(drop, { policy: 'DROP', acceptRule: false });
  const r = checkFirewall({ readable: true, brNetfilter: true, forwardPolicy: 'DROP', acceptRule: false }, 'br0');
  assert.equal(r.status, 'fail');
  assert.match(r.fix ?? '', /iptables -I FORWARD -i br0 -o br0 -m comment --comment flatnet -j ACCEPT/);
  const withRule = parseForwardChain(
    '-P FORWARD DROP\n-A FORWARD -i br0 -o br0 -m comment --comment flatnet -j ACCEPT\n',
    'br0',
  );
  assert.equal(withRule.acceptRule, true);
  assert.equal(
    parseForwardChain('-A FORWARD -i br1 -o br1 -m comment --comment flatnet -j ACCEPT', 'br0').acceptRule,
    false,
  );
  assert.equal(
    checkFirewall({ readable: true, brNetfilter: false, forwardPolicy: 'DROP', acceptRule: false }, 'br0').status,
    'pass',
  );
  assert.equal(
    checkFirewall({ readable: true, brNetfilter: true, forwardPolicy: 'ACCEPT', acceptRule: false }, 'br0').status,
    'pass',
  );
  assert.equal(
    checkFirewall({ readable: false, brNetfilter: true, acceptRule: false, error: 'EPERM' }, 'br0').status,
    'skip',
  );
});

test('docker: plugin listed, a flatnet network, not installed, or not loaded', () => {
  assert.equal(
    checkDocker({ installed: true, networkPlugins: ['bridge', 'flatnet'], flatnetNetworks: 0 }, 'flatnet').status,
    'pass',
  );
  assert.equal(
    checkDocker({ installed: true, networkPlugins: ['flatnet:latest'], flatnetNetworks: 0 }, 'flatnet').status,
    'pass',
  );
  assert.equal(
    checkDocker({ installed: true, networkPlugins: ['bridge'], flatnetNetworks: 2 }, 'flatnet').status,
    'pass',
  );
  assert.equal(checkDocker({ installed: false }, 'flatnet').status, 'skip');
  assert.equal(
    checkDocker(
      { installed: true, networkPlugins: ['bridge'], ipamPlugins: ['default'], flatnetNetworks: 0 },
      'flatnet',
    ).status,
    'fail',
  );
  assert.equal(checkDocker({ installed: true, error: 'cannot connect' }, 'flatnet').status, 'fail');
});

test('each result is one line, with the fix on failures', () => {
  const line = formatCheck({ name: 'etcd', status: 'fail', detail: 'down', fix: 'start it' });
  assert.equal(line, 'FAIL  etcd: down -- fix: start it');
  assert.equal(line.includes('\n'), false);
});
