import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { arpingArgs, ifnameHolding, na6Args } from '../../src/hostnet/announce.js';
import {
  intentRollback,
  intentSchema,
  takeoverCompleted,
  type TakeoverIntent,
} from '../../src/hostnet/takeover-intent.js';
import { failedBatchLine, isSafeBatchToken, renderBatch } from '../../src/hostnet/batch.js';
import { BatchStderr } from '../../src/hostnet/ip-session.js';
import type { AddrInfo, LinkInfo, RouteInfo } from '../../src/hostnet/ip-json.js';
import { forwardAcceptRule } from '../../src/hostnet/iptables.js';
import { bridgeNic, nicPorts, portsOf } from '../../src/hostnet/bridge-ports.js';
import { isFlatnetVeth, isValidIfName, vethNames } from '../../src/hostnet/names.js';
import { movableAddrs, movableRoutes, planRestore, planTakeover, routeAddCommand } from '../../src/hostnet/plan.js';
import { rollbackCommands } from '../../src/hostnet/steps.js';
import { onlyMissingLinkErrors, vethCreateCommands } from '../../src/hostnet/veth.js';
import { FlatnetError } from '../../src/errors.js';

describe('interface names', () => {
  test('accepts kernel-legal names up to 15 chars', () => {
    for (const n of ['eth0', 'br0', 'enp3s0f1', 'bond0.100', 'a_b-c', 'x'.repeat(15)])
      assert.equal(isValidIfName(n), true, n);
  });
  test('rejects empty, long, dot names and anything with separators', () => {
    for (const n of ['', '.', '..', 'x'.repeat(16), 'eth 0', 'eth0/1', 'a:b', '-j', 'eth0\n', 'ä']) {
      assert.equal(isValidIfName(n), n === '-j', JSON.stringify(n));
    }
  });
  test('veth names come from the first 11 chars of the endpoint id', () => {
    const id = '3f2a1b9c0d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd';
    assert.deepEqual(vethNames(id), { host: 'fn3f2a1b9c0d4', container: 'fc3f2a1b9c0d4' });
  });
});

describe('ip batch input', () => {
  test('one command per line, newline-terminated', () => {
    assert.equal(
      renderBatch([
        ['link', 'set', 'dev', 'br0', 'up'],
        ['addr', 'add', '10.0.0.1/24', 'dev', 'br0'],
      ]),
      'link set dev br0 up\naddr add 10.0.0.1/24 dev br0\n',
    );
  });
  test('refuses tokens batch parsing would misread', () => {
    for (const t of ['a b', 'a"b', "a'b", '#x', 'a\\b', 'a\nb', ''])
      assert.equal(isSafeBatchToken(t), false, JSON.stringify(t));
    assert.throws(() => renderBatch([['link', 'del', 'dev', 'x y']]), FlatnetError);
    assert.throws(() => renderBatch([[]]), FlatnetError);
  });
  test('failing line number is read from ip stderr', () => {
    assert.equal(failedBatchLine('RTNETLINK answers: File exists\nCommand failed -:3\n'), 3);
    assert.equal(failedBatchLine('something else'), undefined);
  });
  test('a session reads each failure with what ip said before it, across chunk boundaries', () => {
    const s = new BatchStderr();
    assert.deepEqual(s.push('RTNETLINK answers: File exists\nCommand fa'), []);
    assert.deepEqual(s.push('iled -:1\nDevice "m" does not exist.\nCommand failed -:2\nwarning: x\n'), [
      { line: 1, text: 'RTNETLINK answers: File exists' },
      { line: 2, text: 'Device "m" does not exist.' },
    ]);
    assert.deepEqual(s.push('Command failed -:4\n'), [{ line: 4, text: 'warning: x' }]);
  });
});

const nic: LinkInfo = { ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu: 9000, address: '52:54:00:12:34:56' };
const addrs: AddrInfo[] = [
  { family: 'inet', local: '10.0.0.5', prefixlen: 24, broadcast: '10.0.0.255', scope: 'global', label: 'eth0' },
  { family: 'inet', local: '10.0.0.6', prefixlen: 24, scope: 'global', label: 'eth0:1' },
  { family: 'inet6', local: 'fd00::5', prefixlen: 64, scope: 'global' },
  { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
];
const routes: { v4: RouteInfo[]; v6: RouteInfo[] } = {
  v4: [
    { dst: 'default', gateway: '10.0.0.1', dev: 'eth0', protocol: 'dhcp', metric: 100, flags: [] },
    { dst: '10.0.0.0/24', dev: 'eth0', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.5', flags: [] },
    { dst: '192.168.9.0/24', gateway: '10.0.0.254', dev: 'eth0', flags: ['onlink'] },
  ],
  v6: [
    { dst: 'fe80::/64', dev: 'eth0', protocol: 'kernel', metric: 256, flags: [] },
    { dst: 'default', gateway: 'fd00::1', dev: 'eth0', metric: 1024, flags: [] },
  ],
};

describe('bridge takeover plan', () => {
  const steps = planTakeover({ bridge: 'br0', nic, nicAddrs: addrs, nicRoutes: routes });
  const dos = steps.map((s) => s.do.join(' '));

  test('moves IPv4 and global IPv6 addresses, not link-local ones', () => {
    assert.deepEqual(
      movableAddrs(addrs).map((a) => a.local),
      ['10.0.0.5', '10.0.0.6', 'fd00::5'],
    );
  });
  test('moves static routes, leaves kernel routes to the kernel', () => {
    assert.deepEqual(
      movableRoutes(routes.v4, addrs).map((r) => r.dst),
      ['default', '192.168.9.0/24'],
    );
    assert.deepEqual(
      movableRoutes(routes.v6, addrs).map((r) => r.dst),
      ['default'],
    );
  });
  test('NetworkManager style (noprefixroute): its prefix route moves too, before the routes that need it', () => {
    const nm = addrs.map((a) => (a.local === '10.0.0.5' ? { ...a, noprefixroute: true } : a));
    const nmRoutes = [
      ...routes.v4,
      { dst: '10.0.0.0/24', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.5', metric: 100, flags: [] },
    ];
    const moved = movableRoutes(nmRoutes, nm);
    assert.equal(moved[0]?.dst, '10.0.0.0/24', 'on-link first');
    assert.ok(moved.some((r) => r.dst === 'default'));
    assert.equal(
      movableRoutes(nmRoutes, addrs).some((r) => r.dst === '10.0.0.0/24'),
      false,
      'kernel-made prefix routes stay',
    );
  });
  test('orders: bridge, MAC+MTU, port, up, addresses, routes off then on, NIC addresses last', () => {
    assert.deepEqual(dos, [
      'link add name br0 type bridge stp_state 0 forward_delay 0',
      'link set dev br0 address 52:54:00:12:34:56 mtu 9000',
      'link set dev eth0 master br0',
      'link set dev br0 up',
      'addr add 10.0.0.5/24 dev br0 broadcast 10.0.0.255',
      'addr add 10.0.0.6/24 dev br0 label br0:1',
      'addr add fd00::5/64 dev br0 nodad',
      'route del ::/0 via fd00::1 dev eth0 metric 1024',
      'route del 192.168.9.0/24 via 10.0.0.254 dev eth0',
      'route del 0.0.0.0/0 via 10.0.0.1 dev eth0 metric 100',
      'route add 0.0.0.0/0 via 10.0.0.1 dev br0 proto dhcp metric 100',
      'route add 192.168.9.0/24 via 10.0.0.254 dev br0 onlink',
      'route add ::/0 via fd00::1 dev br0 metric 1024',
      'addr del fd00::5/64 dev eth0',
      'addr del 10.0.0.6/24 dev eth0',
      'addr del 10.0.0.5/24 dev eth0',
    ]);
  });
  test('every step that changes the NIC can be undone; a new bridge is undone by deleting it', () => {
    const undo = rollbackCommands(steps, steps.length).map((c) => c.join(' '));
    assert.equal(undo.at(-1), 'link del dev br0');
    assert.ok(undo.includes('link set dev eth0 nomaster'));
    assert.ok(undo.includes('addr add 10.0.0.5/24 dev eth0 broadcast 10.0.0.255'));
    assert.ok(undo.includes('addr add 10.0.0.6/24 dev eth0 label eth0:1'));
    assert.ok(undo.includes('route add 0.0.0.0/0 via 10.0.0.1 dev eth0 proto dhcp metric 100'));
    // The primary address is given back before its secondary, or the secondary would become primary.
    assert.ok(
      undo.indexOf('addr add 10.0.0.5/24 dev eth0 broadcast 10.0.0.255') <
        undo.indexOf('addr add 10.0.0.6/24 dev eth0 label eth0:1'),
    );
  });
  test('rollback after k steps undoes exactly those, newest first', () => {
    assert.deepEqual(rollbackCommands(steps, 0), []);
    assert.deepEqual(
      rollbackCommands(steps, 3).map((c) => c.join(' ')),
      ['link set dev eth0 nomaster', 'link del dev br0'],
    );
  });
  test('an existing bridge is reconfigured and restored, not deleted', () => {
    const existing: LinkInfo = {
      ifindex: 7,
      ifname: 'br0',
      flags: [],
      mtu: 1500,
      address: 'aa:bb:cc:dd:ee:ff',
      linkinfo: { info_kind: 'bridge', info_data: { stp_state: 1, forward_delay: 1500 } },
    };
    const s = planTakeover({
      bridge: 'br0',
      nic,
      existingBridge: existing,
      nicAddrs: [],
      nicRoutes: { v4: [], v6: [] },
    });
    const undo = rollbackCommands(s, s.length).map((c) => c.join(' '));
    assert.deepEqual(undo, [
      'link set dev br0 down',
      'link set dev eth0 nomaster',
      'link set dev br0 address aa:bb:cc:dd:ee:ff mtu 1500',
      'link set dev br0 type bridge forward_delay 1500',
      'link set dev br0 type bridge stp_state 1',
    ]);
  });
  test('IPv4 device routes keep their scope, IPv6 routes never get one', () => {
    assert.deepEqual(
      routeAddCommand({ dst: '10.9.0.0/16', scope: 'link', flags: [] }, 'br0', false).join(' '),
      'route add 10.9.0.0/16 dev br0 scope link',
    );
    assert.deepEqual(
      routeAddCommand({ dst: 'fd01::/64', scope: 'link', flags: [] }, 'br0', true).join(' '),
      'route add fd01::/64 dev br0',
    );
  });
});

describe('bridge restore plan', () => {
  test('routes off the bridge, NIC released, addresses and routes back, bridge deleted last', () => {
    const steps = planRestore({
      bridge: 'br0',
      nic: 'eth0',
      bridgeAddrs: [{ family: 'inet', local: '10.0.0.5', prefixlen: 24, scope: 'global', label: 'br0' }],
      bridgeRoutes: { v4: [{ dst: 'default', gateway: '10.0.0.1', flags: [] }], v6: [] },
    });
    assert.deepEqual(
      steps.map((s) => s.do.join(' ')),
      [
        'route del 0.0.0.0/0 via 10.0.0.1 dev br0',
        'link set dev eth0 nomaster',
        'addr add 10.0.0.5/24 dev eth0',
        'route add 0.0.0.0/0 via 10.0.0.1 dev eth0',
        'link del dev br0',
      ],
    );
  });
});

describe('veth commands', () => {
  const names = vethNames('0123456789abcdef');
  test('one create with MAC and MTU on both ends, then host end into the bridge and up', () => {
    assert.deepEqual(
      vethCreateCommands({ names, bridge: 'br0', mtu: 1400, mac: '0A:66:0A:14:00:07' }).map((c) => c.join(' ')),
      [
        'link add name fn0123456789a mtu 1400 type veth peer name fc0123456789a address 0a:66:0a:14:00:07 mtu 1400',
        'link set dev fn0123456789a master br0 up',
      ],
    );
  });
  test('refuses a bad MAC or MTU', () => {
    assert.throws(() => vethCreateCommands({ names, bridge: 'br0', mtu: 1400, mac: '0a:66' }), FlatnetError);
    assert.throws(() => vethCreateCommands({ names, bridge: 'br0', mtu: 20, mac: '0a:66:00:00:00:01' }), FlatnetError);
  });
  test('"not found" complaints are recognised, others are not', () => {
    assert.equal(onlyMissingLinkErrors('Cannot find device "fc0123456789a"\nCommand failed -:2\n'), true);
    assert.equal(onlyMissingLinkErrors('RTNETLINK answers: Operation not permitted\nCommand failed -:1\n'), false);
  });
});

describe('announcement and iptables helpers', () => {
  test('finds the up interface holding the address, ignoring tentative or down ones', () => {
    const data = [
      { ifname: 'lo', flags: ['UP'], addr_info: [{ local: '127.0.0.1' }] },
      { ifname: 'eth1', flags: [], addr_info: [{ local: '10.0.0.7' }] },
      { ifname: 'eth0', flags: ['BROADCAST', 'UP'], addr_info: [{ local: '10.0.0.7' }] },
    ];
    assert.equal(ifnameHolding(data, '10.0.0.7'), 'eth0');
    assert.equal(ifnameHolding(data, '10.0.0.8'), undefined);
    assert.equal(
      ifnameHolding(
        [{ ifname: 'eth0', flags: ['UP'], addr_info: [{ local: '10.0.0.7', tentative: true }] }],
        '10.0.0.7',
      ),
      undefined,
    );
    assert.equal(ifnameHolding('garbage', '10.0.0.7'), undefined);
  });
  test('the FORWARD rule matches bridge-to-bridge traffic and carries the flatnet comment', () => {
    assert.deepEqual(forwardAcceptRule('br0'), [
      '-i',
      'br0',
      '-o',
      'br0',
      '-m',
      'comment',
      '--comment',
      'flatnet',
      '-j',
      'ACCEPT',
    ]);
    assert.throws(() => forwardAcceptRule('br0 -j DROP'), FlatnetError);
  });
});

describe('which bridge port is the NIC', () => {
  const veth = 'fn3f2a1b9c0d4';
  test('flatnet veths are exactly fn/fc + 11 hex digits', () => {
    for (const n of [veth, 'fc3f2a1b9c0d4']) assert.equal(isFlatnetVeth(n), true, n);
    for (const n of ['fn3f2a1b9c0d', 'fn3f2a1b9c0d4e', 'fnTEST0000000', 'fx3f2a1b9c0d4', 'eth0', 'fntest0'])
      assert.equal(isFlatnetVeth(n), false, n);
  });
  test('the single port that is not a flatnet veth; none or several: unknown', () => {
    assert.equal(bridgeNic(['eth0', veth]), 'eth0');
    assert.equal(bridgeNic([veth]), undefined);
    assert.equal(bridgeNic(['eth0', 'eth1', veth]), undefined);
    // an operator's own veth that merely starts with fn is a NIC as far as flatnet can tell
    assert.deepEqual(nicPorts(['eth0', 'fntest0', veth]), ['eth0', 'fntest0']);
  });
  test('the NIC asked for counts only when it is a port', () => {
    assert.equal(bridgeNic(['eth0', 'eth1'], 'eth1'), 'eth1');
    assert.equal(bridgeNic(['eth0'], 'eth1'), undefined);
  });
  test('ports are the links whose master is the bridge', () => {
    assert.deepEqual(
      portsOf([{ ifname: 'eth0', master: 'br0' }, { ifname: 'eth1' }, { ifname: veth, master: 'br1' }], 'br0'),
      ['eth0'],
    );
  });
});

describe('announcement commands', () => {
  test('gratuitous ARP: unsolicited, twice, out of the container interface', () => {
    assert.deepEqual(arpingArgs('eth0', '10.0.0.7'), ['-U', '-c', '2', '-I', 'eth0', '10.0.0.7']);
  });
  test('unsolicited NA: to all nodes, from and for the address, Override set, with the target MAC option', () => {
    assert.deepEqual(na6Args('eth0', 'fd00::7'), [
      '-i',
      'eth0',
      '-s',
      'fd00::7',
      '-d',
      'ff02::1',
      '-t',
      'fd00::7',
      '-o',
      '-e',
    ]);
  });
});

describe('takeover intent record', () => {
  const input = { bridge: 'br0', nic, nicAddrs: addrs, nicRoutes: routes };
  const intent: TakeoverIntent = {
    kind: 'bridge-takeover',
    bridge: 'br0',
    parent: 'eth0',
    pid: 1,
    startedAt: '2026-01-01T00:00:00Z',
    snapshot: { nic, nicAddrs: addrs, nicRoutes: routes },
    steps: planTakeover(input).map((s) => ({ name: s.name, do: [...s.do], undo: s.undo.map((c) => [...c]) })),
  };
  const moved = movableAddrs(addrs);
  const done = {
    nicMaster: 'br0',
    nicAddrs: addrs.filter((a) => !moved.includes(a)),
    bridgeAddrs: moved,
    bridgeRoutes: { v4: movableRoutes(routes.v4, addrs), v6: movableRoutes(routes.v6, addrs) },
  };
  test('survives its own schema (what is written is what is read back)', () => {
    assert.deepEqual(intentSchema.parse(JSON.parse(JSON.stringify(intent))), intent);
  });
  test('complete only when the NIC is in the bridge, every address and route moved, none left on the NIC', () => {
    assert.equal(takeoverCompleted(intent, done), true);
    assert.equal(takeoverCompleted(intent, { ...done, nicMaster: undefined }), false);
    assert.equal(
      takeoverCompleted(intent, { ...done, nicAddrs: addrs }),
      false,
      'the last lines (NIC addresses off) did not run',
    );
    assert.equal(takeoverCompleted(intent, { ...done, bridgeAddrs: moved.slice(1) }), false);
    assert.equal(
      takeoverCompleted(intent, {
        ...done,
        bridgeRoutes: { v4: done.bridgeRoutes.v4.slice(1), v6: done.bridgeRoutes.v6 },
      }),
      false,
    );
  });
  test('rollback is every undo, newest step first, ending with the bridge deleted', () => {
    const undo = intentRollback(intent).map((c) => c.join(' '));
    assert.equal(undo[0], 'addr add 10.0.0.5/24 dev eth0 broadcast 10.0.0.255');
    assert.equal(undo.at(-1), 'link del dev br0');
    assert.equal(
      undo.length,
      intent.steps.reduce((n, s) => n + s.undo.length, 0),
    );
  });
});
