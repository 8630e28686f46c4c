import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkBridge, checkMtu } from '../../src/cli/doctor/checks.js';
import { gatherBridge } from '../../src/cli/doctor/gather.js';
import { planBridgeTakeover, restoreBridge } from '../../src/hostnet/bridge.js';
import { listLinks } from '../../src/hostnet/ip-json.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { intentFileName } from '../../src/hostnet/takeover-intent.js';
import { HostNetworkDriver } from '../../src/netdriver/host-network-driver.js';
import { DriverState } from '../../src/netdriver/state.js';
import { silentLogger } from '../../src/observability/logger.js';
import { missing } from '../harness/requirements.js';
import { makeLan, pings, snapshot, type Lan } from './lan-fixture.js';

const CHILD = join(import.meta.dirname, 'takeover-crash-child.js');

/** Runs the takeover in a child process that SIGKILLs itself after `dieAfter` batch lines; resolves with its signal. */
function crashTakeover(netns: string, stateDir: string, dieAfter: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, netns, stateDir, String(dieAfter)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      signal === null ? reject(new Error(`child exited ${code}: ${err}`)) : resolve(signal),
    );
  });
}

describe(
  'a bridge takeover killed mid-batch converges at the next start',
  { skip: missing('root', 'iproute2') },
  () => {
    let lan: Lan;
    let ip: IpRunner;
    let stateDir: string;
    let total: number;
    let pristine: unknown;
    const intentPath = (): string => join(stateDir, intentFileName('br0'));
    const driver = (): HostNetworkDriver =>
      new HostNetworkDriver({ stateDir, logger: silentLogger(), ip, announce: false });
    const doctorPasses = async (): Promise<void> => {
      const fact = await gatherBridge('br0', 'eth0', ip);
      assert.equal(checkBridge(fact).status, 'pass', JSON.stringify(checkBridge(fact)));
      assert.equal(checkMtu(fact).status, 'pass', JSON.stringify(checkMtu(fact)));
    };

    before(async () => {
      lan = await makeLan();
      ip = new IpRunner({ netns: lan.host });
      stateDir = await mkdtemp(join(tmpdir(), 'flatnet-crash-'));
      total = (await planBridgeTakeover(ip, 'br0', 'eth0')).length;
      pristine = await snapshot(lan.host);
    });
    after(async () => {
      await lan?.remove();
      if (stateDir) await rm(stateDir, { recursive: true, force: true });
    });

    test('without a network record: rolled back to the snapshot, whatever line the kill hit', async () => {
      for (const k of [1, 4, Math.floor(total / 2), total - 1]) {
        assert.equal(await crashTakeover(lan.host, stateDir, k), 'SIGKILL');
        assert.ok(existsSync(intentPath()), `intent left behind after ${k} of ${total} lines`);
        assert.notDeepEqual(await snapshot(lan.host), pristine, `the kill after ${k} lines left the host half changed`);
        await driver().init();
        assert.deepEqual(await snapshot(lan.host), pristine, `after a kill after ${k} of ${total} lines`);
        assert.equal(existsSync(intentPath()), false);
      }
      assert.equal(await pings(lan.host, '10.66.0.1'), true);
    });

    test('killed after the whole batch: proven complete and kept as it is', async () => {
      assert.equal(await crashTakeover(lan.host, stateDir, total), 'SIGKILL');
      assert.ok(existsSync(intentPath()));
      const takenOver = await snapshot(lan.host);
      await driver().init();
      assert.deepEqual(await snapshot(lan.host), takenOver, 'a completed takeover is not undone');
      assert.equal(existsSync(intentPath()), false);
      await doctorPasses();
      await restoreBridge({ bridge: 'br0', parent: 'eth0', ip });
    });

    test('with a network record: rolled back, then taken over in full; doctor passes', async () => {
      await new DriverState(stateDir).init();
      await new DriverState(stateDir).putNetwork({
        networkId: randomBytes(32).toString('hex'),
        bridge: 'br0',
        parent: 'eth0',
        mtu: 1500,
        gateway: '10.77.0.1',
        pool: '10.77.0.0/24',
        gatewayIPv6: '',
        poolIPv6: '',
        generic: {},
        internal: false,
        createdAt: new Date().toISOString(),
      });
      assert.equal(await crashTakeover(lan.host, stateDir, Math.floor(total / 2) + 1), 'SIGKILL');
      await driver().init();
      assert.equal(existsSync(intentPath()), false);
      const links = await listLinks(ip);
      const eth0 = links.find((l) => l.ifname === 'eth0');
      assert.equal(eth0?.master, 'br0');
      assert.equal(links.find((l) => l.ifname === 'br0')?.address, eth0?.address, 'the bridge has the NIC MAC');
      await doctorPasses();
      assert.equal(await pings(lan.host, '10.66.0.1'), true, 'IPv4 through the moved default route');
      assert.equal(await pings(lan.host, 'fd77::1'), true);
    });
  },
);
