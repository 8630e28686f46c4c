import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureBridge, restoreBridge } from '../../src/hostnet/bridge.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { readNicFacts } from '../../src/hostnet/nic-facts.js';
import { missing } from '../harness/requirements.js';
import { makeLan, sh, type Lan } from './lan-fixture.js';

const skip = missing('root', 'iproute2');

// What `flatnet create-network` without --subnet reads of the host's NIC, on a real kernel (a lab namespace).
describe('the NIC facts create-network decides the subnet from', { skip }, () => {
  let lan: Lan;
  let ip: IpRunner;
  before(async () => {
    lan = await makeLan();
    ip = new IpRunner({ netns: lan.host });
  });
  after(async () => {
    await lan?.remove();
  });

  test("the NIC asked for, or the default route's: its global addresses and default gateways", async () => {
    const expected = {
      found: true,
      nic: 'eth0',
      holder: 'eth0',
      addresses: ['10.77.0.2/24', 'fd77::2/64'],
      gateways: ['10.77.0.1', 'fd77::1'],
    };
    assert.deepEqual(await readNicFacts(ip, 'eth0'), expected);
    assert.deepEqual(await readNicFacts(ip), expected, 'without --parent: the device of the default route');
    assert.deepEqual(await readNicFacts(ip, 'eth9'), { found: false, parent: 'eth9' });
  });

  test('once the bridge took the NIC over, the addresses and routes are read from the bridge', async () => {
    await ensureBridge(ip, { bridge: 'br0', parent: 'eth0' });
    try {
      const facts = await readNicFacts(ip, 'eth0');
      assert.deepEqual(facts, {
        found: true,
        nic: 'eth0',
        holder: 'br0',
        addresses: ['10.77.0.2/24', 'fd77::2/64'],
        gateways: ['10.77.0.1', 'fd77::1'],
      });
      assert.deepEqual(await readNicFacts(ip), { ...facts, nic: 'br0' }, 'the default route now names br0 itself');
    } finally {
      await restoreBridge({ ip, bridge: 'br0', parent: 'eth0' });
    }
  });

  test('no default route and no --parent: nothing found', async () => {
    await sh('ip', ['-n', lan.host, 'route', 'del', 'default']);
    await sh('ip', ['-n', lan.host, '-6', 'route', 'del', 'default']);
    assert.deepEqual(await readNicFacts(ip), { found: false });
    // A NIC without a default route still gives its addresses (and no gateway).
    const facts = await readNicFacts(ip, 'eth0');
    assert.deepEqual(facts.found ? facts.gateways : 'missing', []);
  });
});
