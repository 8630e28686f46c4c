import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vethNames } from '../../src/hostnet/names.js';
import { makeBridgeNetns } from '../harness/bridge-netns.js';
import { runFlatnet } from '../harness/cli-runner.js';
import { missing } from '../harness/requirements.js';

const skip = missing('root', 'iproute2');
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
/** A container veth as the driver names it (the NIC-of-bridge rule tells them apart by exactly this shape). */
const veth = vethNames('0123456789abcdef');

/** doctor's bridge and MTU checks against real links, in a namespace of the test's own. */
test(
  'doctor reads a real bridge: NIC and address on br0 pass, a veth with another MTU fails with the fix',
  { skip },
  async () => {
    const fx = await makeBridgeNetns('fndoc', '10.55.0.2/24');
    try {
      const doctor = () =>
        runFlatnet(
          [
            'doctor',
            '--bridge',
            'br0',
            '--socket',
            `/tmp/${fx.ns}-none.sock`,
            '--etcd-endpoints',
            'http://127.0.0.1:1',
            '--etcd-timeout-ms',
            '500',
            '--config',
            '/dev/null',
          ],
          { netns: fx.ns, env },
        );
      let r = await doctor();
      assert.notEqual(r.code, 0, 'etcd and the socket are missing here');
      assert.match(r.stdout, /^PASS {2}bridge: br0 holds nic0 and its address 10\.55\.0\.2\/24$/m);
      assert.match(r.stdout, /^PASS {2}mtu: /m);
      assert.match(r.stdout, /^PASS {2}forwarding: /m);
      assert.match(r.stdout, /^FAIL {2}etcd: .* -- fix: /m);

      await fx.ip(['link', 'add', veth.host, 'mtu', '1400', 'type', 'veth', 'peer', 'name', veth.container]);
      await fx.ip(['link', 'set', veth.host, 'master', 'br0']);
      r = await doctor();
      assert.match(r.stdout, /^PASS {2}bridge: br0 holds nic0/m, 'a flatnet veth is not taken for a second NIC');
      assert.match(
        r.stdout,
        new RegExp(
          `^FAIL {2}mtu: MTU 1500 expected, but .*${veth.host}=1400.* -- fix: .*ip link set dev ${veth.host} mtu 1500`,
          'm',
        ),
      );

      await fx.ip(['addr', 'del', '10.55.0.2/24', 'dev', 'br0']);
      await fx.ip(['addr', 'add', '10.55.0.2/24', 'dev', 'nic0']);
      r = await doctor();
      assert.match(r.stdout, /^FAIL {2}bridge: nic0 still holds 10\.55\.0\.2\/24 while in br0 -- fix: /m);
    } finally {
      await fx.remove();
    }
  },
);

test(
  'bridge restore gives the NIC its address back and removes the bridge (parent found by itself)',
  { skip },
  async () => {
    const fx = await makeBridgeNetns('fnrst', '10.56.0.2/24');
    const flatnet = (args: string[]) => runFlatnet([...args, '--config', '/dev/null'], { netns: fx.ns, env });
    try {
      // a container veth still attached: refused without --force, nothing changed
      await fx.ip(['link', 'add', veth.host, 'type', 'veth', 'peer', 'name', veth.container]);
      await fx.ip(['link', 'set', veth.host, 'master', 'br0']);
      const refused = await flatnet(['bridge', 'restore', '--bridge', 'br0']);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, new RegExp(`^flatnet: .*${veth.host}.*\\n$`));
      assert.match(await fx.ip(['-br', 'addr', 'show', 'dev', 'br0']), /10\.56\.0\.2\/24/);

      // a second NIC in the bridge: which one to restore is not guessed
      await fx.ip(['link', 'add', 'nic1', 'type', 'veth', 'peer', 'name', 'nic1peer']);
      await fx.ip(['link', 'set', 'nic1', 'master', 'br0']);
      const ambiguous = await flatnet(['bridge', 'restore', '--bridge', 'br0', '--force']);
      assert.equal(ambiguous.code, 2, ambiguous.stderr);
      assert.match(ambiguous.stderr, /^flatnet: .*name it with --parent/);
      await fx.ip(['link', 'del', 'nic1']);

      const r = await flatnet(['bridge', 'restore', '--bridge', 'br0', '--force']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /br0 removed; nic0 holds its addresses again/);
      assert.match(await fx.ip(['-br', 'addr', 'show', 'dev', 'nic0']), /10\.56\.0\.2\/24/);
      assert.equal((await fx.ip(['-br', 'link', 'show'])).includes('br0'), false);
      const again = await flatnet(['bridge', 'restore', '--bridge', 'br0']);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /nothing to restore/);
    } finally {
      await fx.remove();
    }
  },
);
