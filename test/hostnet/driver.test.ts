import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { execArgs } from '../../src/hostnet/exec.js';
import { restoreBridge } from '../../src/hostnet/bridge.js';
import { listLinks } from '../../src/hostnet/ip-json.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { vethNames } from '../../src/hostnet/names.js';
import { HostNetworkDriver } from '../../src/netdriver/host-network-driver.js';
import type { CreateNetworkInput } from '../../src/netdriver/network-driver.js';
import { DriverState } from '../../src/netdriver/state.js';
import { silentLogger } from '../../src/observability/logger.js';
import { waitFor } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { FailingIpRunner } from './failing-ip-runner.js';
import { makeLan, pings, sh, snapshot, type Lan } from './lan-fixture.js';

const skip = missing('root', 'iproute2');

/** The announcer falls back to busybox's arping applet when iputils-arping is absent. */
function hasArping(): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter);
  return ['arping', 'busybox'].some((bin) => dirs.some((d) => d !== '' && existsSync(join(d, bin))));
}
const hexId = (): string => randomBytes(32).toString('hex');

/** ipv6toolkit's na6 sends the IPv6 announcement; like requirements.ts, CI must not skip for want of it. */
function missingNa6(): string | false {
  if ((process.env.PATH ?? '').split(delimiter).some((d) => d !== '' && existsSync(join(d, 'na6')))) return false;
  if (process.env.CI === 'true') throw new Error('CI must not skip: needs na6 (ipv6toolkit, scripts/install-deps.sh)');
  return 'needs na6 (install ipv6toolkit with scripts/install-deps.sh)';
}

function networkInput(networkId: string, generic: Record<string, string> = {}): CreateNetworkInput {
  return {
    networkId,
    generic,
    internal: false,
    enableIpv6: false,
    ipv4Data: [{ addressSpace: 'FlatLocal', pool: '10.77.0.0/24', gateway: '10.77.0.1/24', auxAddresses: {} }],
    ipv6Data: [],
  };
}

describe('HostNetworkDriver on a real kernel', { skip }, () => {
  let lan: Lan;
  let ip: IpRunner;
  let stateDir: string;
  let driver: HostNetworkDriver;
  const netId = hexId();
  const sandboxes: string[] = [];

  const links = async () => new Map((await listLinks(ip)).map((l) => [l.ifname, l]));
  const newDriver = (extra: Partial<ConstructorParameters<typeof HostNetworkDriver>[0]> = {}) =>
    new HostNetworkDriver({ stateDir, logger: silentLogger(), ip, announce: false, ...extra });

  before(async () => {
    lan = await makeLan();
    ip = new IpRunner({ netns: lan.host });
    stateDir = await mkdtemp(join(tmpdir(), 'flatnet-driver-'));
    driver = newDriver();
    await driver.init();
  });
  after(async () => {
    for (const sb of sandboxes) await execArgs('ip', ['netns', 'del', sb]);
    await lan?.remove();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  test('a takeover failure fails CreateNetwork, changes nothing and records nothing', async () => {
    const before = await snapshot(lan.host);
    const failing = newDriver({ ip: new FailingIpRunner(lan.host, 6) });
    await assert.rejects(failing.createNetwork(networkInput(hexId())), /was undone/);
    assert.deepEqual(await snapshot(lan.host), before);
    assert.deepEqual(await readdir(join(stateDir, 'networks')), []);
  });

  test('unknown -o keys are refused before anything changes', async () => {
    const before = await snapshot(lan.host);
    await assert.rejects(driver.createNetwork(networkInput(hexId(), { vlan: '5' })), /Unknown network option -o vlan/);
    assert.deepEqual(await snapshot(lan.host), before);
  });

  test('CreateNetwork takes over the default-route NIC and records the network', async () => {
    await driver.createNetwork(networkInput(netId, { mtu: '1400' }));
    const l = await links();
    assert.equal(l.get('eth0')?.master, 'br0');
    const rec = JSON.parse(await readFile(join(stateDir, 'networks', `${netId}.json`), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(rec.bridge, 'br0');
    assert.equal(rec.parent, 'eth0');
    assert.equal(rec.mtu, 1400);
    assert.equal(rec.gateway, '10.77.0.1');
    assert.equal(rec.pool, '10.77.0.0/24');
    assert.equal(await pings(lan.host, '10.66.0.1'), true);
    if (!missing('iptables')) {
      const rules = await sh('nsenter', [`--net=/run/netns/${lan.host}`, 'iptables', '-w', '-S', 'FORWARD']);
      assert.match(rules, /-A FORWARD -i br0 -o br0 -m comment --comment flatnet -j ACCEPT/);
    }
  });

  test('a second network finds the NIC inside the bridge and changes nothing', async () => {
    const before = await snapshot(lan.host);
    const second = hexId();
    await driver.createNetwork(networkInput(second));
    assert.deepEqual(await snapshot(lan.host), before);
    const rec = await new DriverState(stateDir).getNetwork(second);
    assert.equal(rec?.parent, 'eth0');
    assert.equal(rec?.mtu, 1500);
    await driver.deleteNetwork(second);
    await driver.deleteNetwork(second);
    await driver.deleteNetwork(hexId());
    assert.equal(await new DriverState(stateDir).getNetwork(second), undefined);
  });

  test('a network on a bridge the driver holds answers without looking at the host; the check after the reply puts a NIC that left the bridge back', async () => {
    let listings = 0;
    const counting = new (class extends IpRunner {
      override json(args: Parameters<IpRunner['json']>[0]): Promise<unknown> {
        listings++;
        return super.json(args);
      }
    })({ netns: lan.host });
    const d = newDriver({ ip: counting });
    const [first, second] = [hexId(), hexId()];
    await d.createNetwork(networkInput(first));
    assert.ok(listings > 0, 'the first network on the bridge looks at the host');
    // the NIC leaves the bridge behind flatnet's back
    await sh('ip', ['-n', lan.host, 'link', 'set', 'eth0', 'nomaster']);
    listings = 0;
    await d.createNetwork(networkInput(second));
    assert.equal(listings, 0, 'no ip listing before the reply');
    await waitFor(
      'the NIC back in the bridge',
      async () => ((await links()).get('eth0')?.master === 'br0' ? true : undefined),
      10_000,
      20,
    );
    assert.ok(listings > 0, 'looked at after the reply');
    assert.equal(await pings(lan.host, '10.66.0.1'), true);
    for (const id of [first, second]) await d.deleteNetwork(id);
    await d.close();
  });

  test('CreateEndpoint derives the MAC only when Docker sent none, and refuses unknown networks', async () => {
    const ep = hexId();
    const derived = await driver.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: '10.77.0.10/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    assert.deepEqual(derived, { interface: { macAddress: '0a:66:0a:4d:00:0a' } });
    const givenEp = hexId();
    const given = await driver.createEndpoint({
      networkId: netId,
      endpointId: givenEp,
      interface: { address: '10.77.0.11/24', addressIPv6: '', macAddress: '02:42:0a:4d:00:0b' },
      options: {},
    });
    assert.deepEqual(given, { interface: null });
    await assert.rejects(
      driver.createEndpoint({
        networkId: hexId(),
        endpointId: hexId(),
        interface: { address: '10.77.0.12/24', addressIPv6: '', macAddress: '' },
        options: {},
      }),
      (e: unknown) => e instanceof FlatnetError && e.kind === 'not-found',
    );
    await driver.deleteEndpoint(netId, ep);
    await driver.deleteEndpoint(netId, givenEp);
    await driver.idle();
    const l = await links();
    assert.equal(
      [ep, givenEp].some((e) => l.has(vethNames(e).host) || l.has(vethNames(e).container)),
      false,
      'a pair made ahead goes with its endpoint',
    );
  });

  test('Join makes a veth pair in the bridge with the network MTU and endpoint MAC; traffic flows; Leave removes it', async () => {
    const ep = hexId();
    const names = vethNames(ep);
    await driver.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: '10.77.0.20/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    await driver.idle();
    assert.equal(
      (await links()).get(names.host)?.master,
      'br0',
      'the pair is made ahead, between CreateEndpoint and Join',
    );
    const res = await driver.join({
      networkId: netId,
      endpointId: ep,
      sandboxKey: '/var/run/docker/netns/none',
      options: {},
    });
    assert.deepEqual(res, {
      srcName: names.container,
      dstPrefix: 'eth',
      gateway: '10.77.0.1',
      gatewayIPv6: '',
      staticRoutes: [],
      disableGatewayService: false,
    });
    const l = await links();
    const hostEnd = l.get(names.host);
    const ctrEnd = l.get(names.container);
    assert.equal(hostEnd?.linkinfo?.info_kind, 'veth');
    assert.equal(hostEnd?.master, 'br0');
    assert.ok(hostEnd?.flags.includes('UP'));
    assert.equal(hostEnd?.mtu, 1400);
    assert.equal(ctrEnd?.mtu, 1400);
    assert.equal(ctrEnd?.address, '0a:66:0a:4d:00:14');
    assert.deepEqual(await driver.endpointOperInfo(netId, ep), {});

    // Play Docker: move the container end into a sandbox, configure it, reach the router through br0.
    const sb = `fnts${randomBytes(3).toString('hex')}`;
    sandboxes.push(sb);
    await sh('ip', ['netns', 'add', sb]);
    await sh('ip', ['-n', lan.host, 'link', 'set', names.container, 'netns', sb]);
    await sh(
      'ip',
      ['-n', sb, '-batch', '-'],
      `link set ${names.container} name eth0\naddr add 10.77.0.20/24 dev eth0\nlink set eth0 up\nroute add default via ${res.gateway}\n`,
    );
    assert.equal(await pings(sb, '10.66.0.1'), true, 'container reaches the LAN router via the bridge');

    await driver.leave(netId, ep);
    await driver.idle(); // the veth goes in the background, off Docker's teardown path
    assert.equal((await links()).has(names.host), false);
    assert.equal(
      (await listLinks(new IpRunner({ netns: sb }))).some((x) => x.ifname === 'eth0'),
      false,
      'peer went too',
    );
    await driver.leave(netId, ep);
    await driver.deleteEndpoint(netId, ep);
    await driver.deleteEndpoint(netId, ep);
    await driver.leave(netId, hexId());
    await driver.deleteEndpoint(netId, hexId());
    assert.deepEqual(await driver.endpointOperInfo(netId, hexId()), {});
  });

  test('DeleteEndpoint removes the container end Docker moved back to the host', async () => {
    const ep = hexId();
    const names = vethNames(ep);
    await driver.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: '10.77.0.21/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    await driver.join({ networkId: netId, endpointId: ep, sandboxKey: '', options: {} });
    await driver.deleteEndpoint(netId, ep);
    await driver.idle();
    const l = await links();
    assert.equal(l.has(names.host) || l.has(names.container), false);
    assert.equal(await new DriverState(stateDir).getEndpoint(ep), undefined);
  });

  test('a failed Join leaves no link behind', async () => {
    const state = new DriverState(stateDir);
    const brokenNet = hexId();
    const rec = await state.getNetwork(netId);
    assert.ok(rec);
    await state.putNetwork({ ...rec, networkId: brokenNet, bridge: 'nobr0' });
    const ep = hexId();
    await driver.createEndpoint({
      networkId: brokenNet,
      endpointId: ep,
      interface: { address: '10.77.0.22/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    await assert.rejects(
      driver.join({ networkId: brokenNet, endpointId: ep, sandboxKey: '', options: {} }),
      FlatnetError,
    );
    const l = await links();
    assert.equal(l.has(vethNames(ep).host) || l.has(vethNames(ep).container), false);
    await driver.deleteEndpoint(brokenNet, ep);
    await driver.deleteNetwork(brokenNet);
  });

  test('a repeated Join for the same endpoint replaces its leftover pair', async () => {
    const ep = hexId();
    await driver.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: '10.77.0.23/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    await driver.join({ networkId: netId, endpointId: ep, sandboxKey: '', options: {} });
    await driver.join({ networkId: netId, endpointId: ep, sandboxKey: '', options: {} });
    assert.equal((await links()).get(vethNames(ep).host)?.master, 'br0');
    await driver.deleteEndpoint(netId, ep);
  });

  test('state survives a restart: the new instance tears down old endpoints and reaps orphans', async () => {
    const ep = hexId();
    const names = vethNames(ep);
    await driver.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: '10.77.0.24/24', addressIPv6: '', macAddress: '' },
      options: {},
    });
    await driver.join({ networkId: netId, endpointId: ep, sandboxKey: '', options: {} });
    // An orphan: a flatnet-shaped pair whose endpoint record is gone (Docker's DeleteEndpoint hit a dead plugin).
    const orphan = vethNames(hexId());
    await sh('ip', ['-n', lan.host, 'link', 'add', orphan.host, 'type', 'veth', 'peer', 'name', orphan.container]);

    const restarted = newDriver();
    await restarted.init();
    let l = await links();
    assert.equal(l.has(orphan.host) || l.has(orphan.container), false, 'orphan reaped');
    assert.equal(l.get(names.host)?.master, 'br0', 'live endpoint kept');
    const res = await restarted.join({ networkId: netId, endpointId: ep, sandboxKey: '', options: {} });
    assert.equal(res.gateway, '10.77.0.1');
    await restarted.leave(netId, ep);
    await restarted.deleteEndpoint(netId, ep);
    await restarted.idle();
    l = await links();
    assert.equal(l.has(names.host) || l.has(names.container), false);
    assert.equal(l.get('eth0')?.master, 'br0', 'the bridge stays');
  });

  test('a restart after the bridge vanished (reboot) takes the NIC over again', async () => {
    await restoreBridge({ bridge: 'br0', parent: 'eth0', ip });
    assert.equal((await links()).has('br0'), false);
    await newDriver().init();
    const l = await links();
    assert.equal(l.get('eth0')?.master, 'br0');
    assert.equal(await pings(lan.host, '10.66.0.1'), true);
  });

  test(
    'Join announces the container with gratuitous ARP once its address is up',
    { skip: hasArping() ? false : missing('arping') },
    async () => {
      const announcing = newDriver({ announce: true, announceTimeoutMs: 8000 });
      const ep = hexId();
      const names = vethNames(ep);
      const sb = `fnts${randomBytes(3).toString('hex')}`;
      sandboxes.push(sb);
      await sh('ip', ['netns', 'add', sb]);
      // The router holds a stale entry for the address: only an announcement (not a request) can correct it here.
      await sh('ip', [
        '-n',
        lan.router,
        'neigh',
        'replace',
        '10.77.0.30',
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        'lan0',
        'nud',
        'stale',
      ]);
      await announcing.createEndpoint({
        networkId: netId,
        endpointId: ep,
        interface: { address: '10.77.0.30/24', addressIPv6: '', macAddress: '' },
        options: {},
      });
      await announcing.join({ networkId: netId, endpointId: ep, sandboxKey: `/run/netns/${sb}`, options: {} });
      await sh('ip', ['-n', lan.host, 'link', 'set', names.container, 'netns', sb]);
      await sh(
        'ip',
        ['-n', sb, '-batch', '-'],
        `link set ${names.container} name eth0\naddr add 10.77.0.30/24 dev eth0\nlink set eth0 up\n`,
      );
      await announcing.idle();
      const neigh = await sh('ip', ['-n', lan.router, 'neigh', 'show', '10.77.0.30', 'dev', 'lan0']);
      assert.match(neigh, /lladdr 0a:66:0a:4d:00:1e/);
      await announcing.deleteEndpoint(netId, ep);
    },
  );

  /** A container in its own sandbox, configured the way Docker does it after Join; the router's cache primed stale. */
  async function joinAndConfigure(
    d: HostNetworkDriver,
    n: number,
  ): Promise<{ ep: string; v4: string; v6: string; mac: string }> {
    const ep = hexId();
    const names = vethNames(ep);
    const v4 = `10.77.0.${n}`;
    const v6 = `fd77::${n}`;
    const sb = `fnts${randomBytes(3).toString('hex')}`;
    sandboxes.push(sb);
    await sh('ip', ['netns', 'add', sb]);
    await sh('nsenter', [
      `--net=/run/netns/${sb}`,
      'sysctl',
      '-qw',
      'net.ipv6.conf.all.accept_dad=0',
      'net.ipv6.conf.default.accept_dad=0',
    ]);
    for (const addr of [v4, v6]) {
      await sh('ip', [
        '-n',
        lan.router,
        'neigh',
        'replace',
        addr,
        'lladdr',
        '02:00:00:00:00:99',
        'dev',
        'lan0',
        'nud',
        'stale',
      ]);
    }
    const created = await d.createEndpoint({
      networkId: netId,
      endpointId: ep,
      interface: { address: `${v4}/24`, addressIPv6: `${v6}/64`, macAddress: '' },
      options: {},
    });
    await d.join({ networkId: netId, endpointId: ep, sandboxKey: `/run/netns/${sb}`, options: {} });
    await sh('ip', ['-n', lan.host, 'link', 'set', names.container, 'netns', sb]);
    await sh(
      'ip',
      ['-n', sb, '-batch', '-'],
      `link set ${names.container} name eth0\naddr add ${v6}/64 dev eth0 nodad\naddr add ${v4}/24 dev eth0\nlink set eth0 up\n`,
    );
    await d.idle();
    return { ep, v4, v6, mac: created.interface?.macAddress ?? '' };
  }
  const routerSees = async (addr: string): Promise<string> =>
    sh('ip', ['-n', lan.router, 'neigh', 'show', addr, 'dev', 'lan0']);

  test(
    'a joined container is announced: ARP and an unsolicited NA reach the router',
    { skip: hasArping() ? missingNa6() : missing('arping') },
    async () => {
      const d = newDriver({ announce: true, announceTimeoutMs: 8000 });
      const c = await joinAndConfigure(d, 31);
      assert.equal(c.mac, '0a:66:0a:4d:00:1f');
      assert.match(await routerSees(c.v4), /lladdr 0a:66:0a:4d:00:1f/);
      assert.match(await routerSees(c.v6), /lladdr 0a:66:0a:4d:00:1f/, 'the NA corrected the IPv6 neighbour entry');
      await d.deleteEndpoint(netId, c.ep);
    },
  );
});
