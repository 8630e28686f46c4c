import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../harness/requirements.js';

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', '..', '..', 'dist', 'src', 'cli', 'main.js');

/** doctor's bridge and MTU checks against real links, in a namespace of the test's own. */
test('doctor reads a real bridge: NIC and address on br0 pass, a veth with another MTU fails with the fix', { skip: missing('root', 'iproute2') }, async () => {
  const ns = `fndoc-${Math.random().toString(36).slice(2, 8)}`;
  const ip = (args: string[]) => run('ip', ['-n', ns, ...args]);
  await run('ip', ['netns', 'add', ns]);
  try {
    await ip(['link', 'add', 'nic0', 'type', 'veth', 'peer', 'name', 'nic0peer']);
    await ip(['link', 'add', 'br0', 'type', 'bridge']);
    await ip(['link', 'set', 'nic0', 'master', 'br0']);
    await ip(['addr', 'add', '10.55.0.2/24', 'dev', 'br0']);
    await ip(['link', 'set', 'nic0', 'up']);
    await ip(['link', 'set', 'br0', 'up']);
    const doctor = async () => {
      try {
        const { stdout } = await run('nsenter', [`--net=/run/netns/${ns}`, process.execPath, cli, 'doctor', '--bridge', 'br0',
          '--socket', `/tmp/${ns}-none.sock`, '--etcd-endpoints', 'http://127.0.0.1:1', '--etcd-timeout-ms', '500', '--config', '/dev/null'],
          { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
        return { code: 0, stdout };
      } catch (err) {
        const e = err as { code: number; stdout: string };
        return { code: e.code, stdout: e.stdout };
      }
    };
    let r = await doctor();
    assert.notEqual(r.code, 0, 'etcd and the socket are missing here');
    assert.match(r.stdout, /^PASS {2}bridge: br0 holds nic0 and its address 10\.55\.0\.2\/24$/m);
    assert.match(r.stdout, /^PASS {2}mtu: /m);
    assert.match(r.stdout, /^PASS {2}forwarding: /m);
    assert.match(r.stdout, /^FAIL {2}etcd: .* -- fix: /m);

    await ip(['link', 'add', 'fntest0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'fntest1']);
    await ip(['link', 'set', 'fntest0', 'master', 'br0']);
    r = await doctor();
    assert.match(r.stdout, /^FAIL {2}mtu: MTU 1500 expected, but .*fntest0=1400.* -- fix: .*ip link set dev fntest0 mtu 1500/m);

    await ip(['addr', 'del', '10.55.0.2/24', 'dev', 'br0']);
    await ip(['addr', 'add', '10.55.0.2/24', 'dev', 'nic0']);
    r = await doctor();
    assert.match(r.stdout, /^FAIL {2}bridge: nic0 still holds 10\.55\.0\.2\/24 while in br0 -- fix: /m);
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
});

test('bridge restore gives the NIC its address back and removes the bridge (parent found by itself)', { skip: missing('root', 'iproute2') }, async () => {
  const ns = `fnrst-${Math.random().toString(36).slice(2, 8)}`;
  const ip = (args: string[]) => run('ip', ['-n', ns, ...args]);
  const flatnet = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run('nsenter', [`--net=/run/netns/${ns}`, process.execPath, cli, ...args, '--config', '/dev/null'],
        { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };
  await run('ip', ['netns', 'add', ns]);
  try {
    await ip(['link', 'add', 'nic0', 'type', 'veth', 'peer', 'name', 'nic0peer']);
    await ip(['link', 'add', 'br0', 'type', 'bridge']);
    await ip(['link', 'set', 'nic0', 'master', 'br0']);
    await ip(['addr', 'add', '10.56.0.2/24', 'dev', 'br0']);
    await ip(['link', 'set', 'nic0', 'up']);
    await ip(['link', 'set', 'br0', 'up']);
    // a container veth still attached: refused without --force, nothing changed
    await ip(['link', 'add', 'fnrst0', 'type', 'veth', 'peer', 'name', 'fnrst1']);
    await ip(['link', 'set', 'fnrst0', 'master', 'br0']);
    const refused = await flatnet(['bridge', 'restore', '--bridge', 'br0']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /^flatnet: .*fnrst0.*\n$/);
    assert.match((await ip(['-br', 'addr', 'show', 'dev', 'br0'])).stdout, /10\.56\.0\.2\/24/);

    const r = await flatnet(['bridge', 'restore', '--bridge', 'br0', '--force']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /br0 removed; nic0 holds its addresses again/);
    assert.match((await ip(['-br', 'addr', 'show', 'dev', 'nic0'])).stdout, /10\.56\.0\.2\/24/);
    assert.equal((await ip(['-br', 'link', 'show'])).stdout.includes('br0'), false);
    const again = await flatnet(['bridge', 'restore', '--bridge', 'br0']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to restore/);
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
});
