import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../harness/requirements.js';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..', '..');

test(
  'rpmbuild makes a noarch rpm with launcher, app, unit and a noreplace config',
  { skip: missing('rpmbuild') },
  async () => {
    const out = await mkdtemp(join(tmpdir(), 'flatnet-rpm-test-'));
    try {
      const { stdout } = await run('bash', [join(repo, 'rpm', 'build-rpm.sh'), out], { maxBuffer: 16 << 20 });
      const rpmFile = stdout.trim().split('\n').pop() ?? '';
      assert.match(rpmFile, /flatnet-\d+\.\d+\.\d+-1\.noarch\.rpm$/);

      const files = (await run('rpm', ['-qlp', rpmFile], { maxBuffer: 64 << 20 })).stdout.split('\n');
      for (const f of [
        '/usr/bin/flatnet',
        '/usr/lib/flatnet/package.json',
        '/usr/lib/flatnet/dist/src/cli/main.js',
        '/usr/lib/flatnet/dist/src/server/run.js',
        '/usr/lib/flatnet/src/lab/host-launcher.sh',
        '/usr/lib/flatnet/src/lab/host-dockerd.sh',
        '/usr/lib/flatnet/dist/src/dashboard/app.js',
        '/usr/lib/flatnet/src/dashboard/static/index.html',
        '/usr/lib/flatnet/src/dashboard/static/dashboard.js',
        '/usr/lib/flatnet/src/dashboard/static/dashboard.css',
        '/usr/lib/flatnet/plugin-config/build-rootfs.sh',
        '/usr/lib/flatnet/plugin-config/config.json',
        '/usr/lib/flatnet/node_modules/commander/package.json',
        '/usr/lib/flatnet/node_modules/etcd3/package.json',
        '/usr/lib/systemd/system/flatnet.service',
        '/etc/flatnet/flatnet.conf',
        '/usr/share/flatnet/flatnet-dashboard.json',
        '/usr/share/flatnet/flatnet-alerts.yml',
      ]) {
        assert.ok(files.includes(f), `${f} is in the rpm`);
      }
      // production only: no compiler, no tests
      assert.equal(
        files.some((f) => f.startsWith('/usr/lib/flatnet/node_modules/typescript/')),
        false,
      );
      assert.equal(
        files.some((f) => f.startsWith('/usr/lib/flatnet/dist/test/')),
        false,
      );

      const config = (await run('rpm', ['-qp', '--configfiles', rpmFile])).stdout.trim().split('\n');
      assert.deepEqual(config, ['/etc/flatnet/flatnet.conf']);
      const flags = (
        await run('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags} %{FILEMODES:perms}\n]', rpmFile], {
          maxBuffer: 64 << 20,
        })
      ).stdout;
      assert.match(flags, /^\/etc\/flatnet\/flatnet\.conf cn -rw-------$/m, 'config is %config(noreplace), mode 0600');
      assert.match(flags, /^\/usr\/bin\/flatnet \S* -rwxr-xr-x$/m);
      assert.match(flags, /^\/usr\/share\/flatnet\/flatnet-alerts\.yml \S* -rw-r--r--$/m);
      const arch = (await run('rpm', ['-qp', '--qf', '%{ARCH}', rpmFile])).stdout;
      assert.equal(arch, 'noarch');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  },
);
