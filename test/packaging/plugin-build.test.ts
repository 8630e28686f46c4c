import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../harness/requirements.js';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..', '..');

/**
 * `flatnet plugin build DIR` as an operator runs it on a host where flatnet is installed: the app staged the way
 * the rpm installs it (/usr/lib/flatnet), and that copy's CLI builds the plugin directory, with no checkout around.
 */
test(
  'an installed flatnet builds the managed plugin directory; a directory holding other files is refused and left alone',
  { skip: missing('root', 'iproute2', 'iptables') },
  async () => {
    const work = await mkdtemp(join(tmpdir(), 'flatnet-plugin-build-'));
    try {
      const app = join(work, 'usr-lib-flatnet');
      await run('bash', [join(repo, 'rpm', 'stage-app.sh'), app], { maxBuffer: 16 << 20 });
      assert.equal(existsSync(join(app, 'rpm')), false, 'the installed app has no checkout scripts');
      const cli = join(app, 'dist', 'src', 'cli', 'main.js');

      const out = join(work, 'plugin');
      const { stdout } = await run(process.execPath, [cli, 'plugin', 'build', '--name', 'flatnet:0.1', out], {
        maxBuffer: 16 << 20,
      });
      assert.match(stdout, /plugin directory ready/);
      assert.match(stdout, new RegExp(`docker plugin create flatnet:0\\.1 ${out}`));
      assert.deepEqual((await readdir(out)).sort(), ['config.json', 'rootfs']);
      assert.equal(
        await readFile(join(out, 'config.json'), 'utf8'),
        await readFile(join(repo, 'plugin-config', 'config.json'), 'utf8'),
      );
      for (const f of [
        'usr/bin/node',
        'usr/lib/flatnet/dist/src/cli/main.js',
        'usr/lib/flatnet/node_modules/etcd3/package.json',
        'usr/sbin/ip',
        'etc/machine-id',
      ]) {
        assert.ok(existsSync(join(out, 'rootfs', f)), `${f} is in the rootfs`);
      }
      assert.equal(
        existsSync(join(out, 'rootfs/usr/lib/flatnet/node_modules/typescript')),
        false,
        'production modules only',
      );
      // the rootfs's node runs the app with the rootfs's libraries
      const { stdout: version } = await run('chroot', [
        join(out, 'rootfs'),
        '/usr/bin/node',
        '/usr/lib/flatnet/dist/src/cli/main.js',
        'version',
      ]);
      assert.match(version, /^flatnet \d+\.\d+\.\d+/);

      const other = join(work, 'home');
      await mkdir(other);
      await writeFile(join(other, 'notes.txt'), 'keep me');
      const refused = await run(process.execPath, [cli, 'plugin', 'build', other]).then(
        () => undefined,
        (err: { code: number; stderr: string }) => err,
      );
      assert.ok(refused, 'a directory with other files is refused');
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /^flatnet: .*home holds other files \(notes\.txt\)/);
      assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
      assert.deepEqual(await readdir(other), ['notes.txt']);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
);
