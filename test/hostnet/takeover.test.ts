import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureBridge, planBridgeTakeover, restoreBridge } from '../../src/hostnet/bridge.js';
import { listLinks, linkAddrs, linkRoutes } from '../../src/hostnet/ip-json.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { ensureForwardAccept, removeForwardAccept } from '../../src/hostnet/iptables.js';
import { missing } from '../harness/requirements.js';
import { FailingIpRunner } from './failing-ip-runner.js';
import { makeLan, pings, sh, snapshot, type Lan } from './lan-fixture.js';

const skip = missing('root', 'iproute2');

describe('bridge takeover on a real kernel', { skip }, () => {
  let lan: Lan;
  let ip: IpRunner;
  before(async () => {
    lan = await makeLan();
    ip = new IpRunner({ netns: lan.host });
  });
  after(async () => {
    await lan?.remove();
  });

  test('a failure injected after every step leaves the namespace exactly as before', async () => {
    const before = await snapshot(lan.host);
    const total = (await planBridgeTakeover(ip, 'br0', 'eth0')).length;
    assert.ok(total >= 10, `plan has ${total} steps`);
    for (let k = 1; k < total; k++) {
      await assert.rejects(
        ensureBridge(new FailingIpRunner(lan.host, k), { bridge: 'br0', parent: 'eth0' }),
        /was undone/,
      );
      assert.deepEqual(await snapshot(lan.host), before, `after failing at step ${k + 1}`);
    }
    assert.equal(await pings(lan.host, '10.66.0.1'), true);
  });

  test('a real kernel refusal mid-batch rolls back an existing bridge to its own settings', async () => {
    // The address already on br0 makes "address on bridge" fail with File exists after the bridge steps took effect.
    await sh(
      'ip',
      ['-n', lan.host, '-batch', '-'],
      'link add br0 type bridge stp_state 1 forward_delay 1000\nlink set dev br0 mtu 1400\naddr add 10.77.0.2/24 dev br0 noprefixroute\n',
    );
    try {
      const before = await snapshot(lan.host);
      await assert.rejects(
        ensureBridge(ip, { bridge: 'br0', parent: 'eth0' }),
        /address 10\.77\.0\.2\/24 on bridge.*was undone/,
      );
      assert.deepEqual(await snapshot(lan.host), before);
    } finally {
      await sh('ip', ['-n', lan.host, 'link', 'del', 'br0']);
    }
  });

  test('takeover moves addresses, routes, MAC and MTU to the bridge and keeps connectivity', async () => {
    assert.equal(await pings(lan.host, '10.66.0.1'), true, 'before');
    assert.equal(await ensureBridge(ip, { bridge: 'br0', parent: 'eth0' }), true);
    assert.equal(await pings(lan.host, '10.66.0.1'), true, 'IPv4 through the moved default route');
    assert.equal(await pings(lan.host, 'fd77::1'), true, 'IPv6 on the bridge');

    const links = await listLinks(ip);
    const eth0 = links.find((l) => l.ifname === 'eth0');
    const br0 = links.find((l) => l.ifname === 'br0');
    assert.equal(eth0?.master, 'br0');
    assert.equal(br0?.address, eth0?.address, 'bridge took the NIC MAC');
    assert.equal(br0?.mtu, eth0?.mtu);
    assert.equal(br0?.linkinfo?.info_data?.stp_state, 0);
    assert.equal(br0?.linkinfo?.info_data?.forward_delay, 0);
    assert.deepEqual(
      (await linkAddrs(ip, 'br0')).filter((a) => a.scope === 'global').map((a) => a.local),
      ['10.77.0.2', 'fd77::2'],
    );
    assert.deepEqual(
      (await linkAddrs(ip, 'eth0')).filter((a) => a.scope === 'global'),
      [],
    );
    const routes = await linkRoutes(ip, 'br0');
    assert.deepEqual(
      routes.v4.filter((r) => r.protocol !== 'kernel').map((r) => `${r.dst} ${r.gateway}`),
      ['default 10.77.0.1', '10.88.0.0/16 10.77.0.1'],
    );
    assert.deepEqual(
      routes.v6.filter((r) => r.dst === 'default').map((r) => r.gateway),
      ['fd77::1'],
    );
  });

  test('a second takeover changes nothing', async () => {
    const before = await snapshot(lan.host);
    assert.equal(await ensureBridge(ip, { bridge: 'br0', parent: 'eth0' }), false);
    assert.deepEqual(await snapshot(lan.host), before);
  });

  test('the FORWARD accept rule is added once and removed', { skip: missing('iptables') }, async () => {
    const rules = async () =>
      (await sh('nsenter', [`--net=/run/netns/${lan.host}`, 'iptables', '-w', '-S', 'FORWARD']))
        .split('\n')
        .filter((l) => l.includes('flatnet'));
    await ensureForwardAccept(ip, 'br0');
    await ensureForwardAccept(ip, 'br0');
    assert.deepEqual(await rules(), ['-A FORWARD -i br0 -o br0 -m comment --comment flatnet -j ACCEPT']);
    await removeForwardAccept(ip, 'br0');
    assert.deepEqual(await rules(), []);
  });

  test('restore refuses while a container veth is attached, unless forced', async () => {
    await sh(
      'ip',
      ['-n', lan.host, '-batch', '-'],
      'link add fn0000000000a type veth peer name fc0000000000a\nlink set dev fn0000000000a master br0\n',
    );
    try {
      await assert.rejects(restoreBridge({ bridge: 'br0', parent: 'eth0', ip }), /still has ports fn0000000000a/);
    } finally {
      await sh('ip', ['-n', lan.host, 'link', 'del', 'fn0000000000a']);
    }
  });

  test('a failure injected after every restore step leaves the bridge setup as it was', async () => {
    const before = await snapshot(lan.host);
    for (let k = 1; k < 7; k++) {
      await assert.rejects(
        restoreBridge({ bridge: 'br0', parent: 'eth0', ip: new FailingIpRunner(lan.host, k) }),
        /was undone/,
      );
      assert.deepEqual(await snapshot(lan.host), before, `after failing restore at step ${k + 1}`);
    }
  });

  test('restore puts the NIC back as it was before the takeover', async () => {
    await ensureForwardAccept(ip, 'br0');
    await restoreBridge({ bridge: 'br0', parent: 'eth0', ip });
    const fresh = await makeLan();
    try {
      // Same recipe, never taken over: everything but the random MACs must match.
      const norm = (s: unknown) =>
        JSON.stringify(s)
          .replace(/"address":"[0-9a-f:]+"/g, '"address":"-"')
          .replace(/fe80::[0-9a-f:]+/g, 'fe80::-');
      assert.equal(norm(await snapshot(lan.host)), norm(await snapshot(fresh.host)));
    } finally {
      await fresh.remove();
    }
    assert.equal(await pings(lan.host, '10.66.0.1'), true);
    await restoreBridge({ bridge: 'br0', parent: 'eth0', ip });
    if (!missing('iptables')) {
      const out = await sh('nsenter', [`--net=/run/netns/${lan.host}`, 'iptables', '-w', '-S', 'FORWARD']);
      assert.doesNotMatch(out, /flatnet/);
    }
  });
});
