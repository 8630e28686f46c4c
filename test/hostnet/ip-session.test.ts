import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { IpBatchError } from '../../src/hostnet/batch.js';
import { execArgs } from '../../src/hostnet/exec.js';
import { listLinks } from '../../src/hostnet/ip-json.js';
import { IpRunner } from '../../src/hostnet/ip-runner.js';
import { IpSession } from '../../src/hostnet/ip-session.js';
import { missing } from '../harness/requirements.js';
import { sh } from '../harness/sh.js';

/*
 * The long-lived `ip -batch` behind IpRunner's session batches, on a real kernel in a namespace of the test's
 * own: failures stop a batch and say how far it got, a stale name cache is survived, a killed ip is replaced.
 */
const skip = missing('root');
const ns = `fnses${randomBytes(3).toString('hex')}`;
const names = async (): Promise<Set<string>> =>
  new Set((await listLinks(new IpRunner({ netns: ns, session: false }))).map((l) => l.ifname));

before(async () => {
  if (skip) return;
  await sh('ip', ['netns', 'add', ns]);
  await sh('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
});
after(async () => {
  if (!skip) await execArgs('ip', ['netns', 'del', ns]);
});

test(
  'a session runs commands in order and stops at the first failure, saying how many took effect',
  { skip },
  async () => {
    const s = new IpSession('ip', ['-n', ns]);
    try {
      await s.run([
        ['link', 'add', 'sa0', 'type', 'bridge'],
        ['link', 'set', 'dev', 'sa0', 'up'],
      ]);
      assert.ok((await names()).has('sa0'));
      const err = await s
        .run([
          ['link', 'add', 'sa1', 'type', 'bridge'],
          ['link', 'add', 'sa0', 'type', 'bridge'],
          ['link', 'add', 'sa2', 'type', 'bridge'],
        ])
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.ok(err instanceof IpBatchError, String(err));
      assert.equal(err.completed, 1);
      assert.match(err.stderr, /File exists/);
      const now = await names();
      assert.ok(now.has('sa1') && !now.has('sa2'), 'the command after the failure never ran');
      // the session goes on after a failure (a fresh ip)
      await s.run([
        ['link', 'del', 'dev', 'sa1'],
        ['link', 'del', 'dev', 'sa0'],
      ]);
      assert.ok(!(await names()).has('sa0'));
    } finally {
      s.close();
    }
  },
);

test(
  'IpRunner through the session: links deleted and made again under one name; a failure counted once',
  { skip },
  async () => {
    const ip = new IpRunner({ netns: ns });
    try {
      for (let i = 0; i < 3; i++) {
        await ip.batch(
          [
            ['link', 'add', 'fnc0', 'type', 'veth', 'peer', 'name', 'fcc0'],
            ['link', 'set', 'dev', 'fnc0', 'master', 'br0', 'up'],
          ],
          { session: true },
        );
        const l = (await listLinks(new IpRunner({ netns: ns, session: false }))).find((x) => x.ifname === 'fnc0');
        assert.equal(l?.master, 'br0', `round ${i}`);
        await ip.batch([['link', 'del', 'dev', 'fnc0']], { session: true });
      }
      // The failed command is tried again in a fresh ip; the one before it must not run twice (it would say "File exists").
      await assert.rejects(
        ip.batch(
          [
            ['link', 'add', 'fnd0', 'type', 'bridge'],
            ['link', 'set', 'dev', 'nosuchlink0', 'up'],
          ],
          { session: true },
        ),
        (e: unknown) => e instanceof IpBatchError && e.completed === 1 && /nosuchlink0/.test(e.stderr),
      );
      assert.ok((await names()).has('fnd0'));
      await ip.batch([['link', 'del', 'dev', 'fnd0']], { session: true });
    } finally {
      ip.close();
    }
  },
);

test('a killed session ip fails only the command in flight; the next batch gets a new ip', { skip }, async () => {
  const s = new IpSession('ip', ['-n', ns]);
  try {
    await s.run([['link', 'add', 'sk0', 'type', 'bridge']]);
    const { stdout } = await execArgs('pgrep', ['-f', `^ip -n ${ns} -force -batch -$`]);
    const pids = stdout.trim().split('\n').filter(Boolean).map(Number);
    assert.equal(pids.length, 1, 'one session ip of this test');
    process.kill(pids[0] as number, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    await s.run([['link', 'del', 'dev', 'sk0']]);
    assert.ok(!(await names()).has('sk0'));
  } finally {
    s.close();
  }
});
