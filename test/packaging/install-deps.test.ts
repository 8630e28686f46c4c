import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { missing } from '../harness/requirements.js';

const run = promisify(execFile);
const scripts = join(import.meta.dirname, '..', '..', '..', 'scripts');

const DEB822 = `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`;
const ONE_LINE = `# Debian 11
deb [arch=amd64] http://old.example/debian/ bullseye main
deb http://old.example/debian-security bullseye-security main
`;

/** Runs debian-mirror.sh on an apt directory holding the given files; returns its output and exit code. */
async function mirrorOf(files: Record<string, string>): Promise<{ out: string; err: string; code: number }> {
  const apt = await mkdtemp(join(tmpdir(), 'flatnet-apt-'));
  try {
    await mkdir(join(apt, 'sources.list.d'));
    for (const [name, text] of Object.entries(files)) await writeFile(join(apt, name), text);
    try {
      const { stdout, stderr } = await run('bash', [join(scripts, 'debian-mirror.sh'), apt]);
      return { out: stdout.trim(), err: stderr.trim(), code: 0 };
    } catch (e) {
      const err = e as { stdout: string; stderr: string; code: number };
      return { out: err.stdout.trim(), err: err.stderr.trim(), code: err.code };
    }
  } finally {
    await rm(apt, { recursive: true, force: true });
  }
}

describe('debian-mirror.sh finds the machine mirror in every apt source layout', () => {
  test('Debian 12: deb822 only, no sources.list', async () => {
    assert.deepEqual(await mirrorOf({ 'sources.list.d/debian.sources': DEB822 }), {
      out: 'http://mirror.example/debian',
      err: '',
      code: 0,
    });
  });
  test('Debian 11: one-line sources.list only (options and a trailing slash)', async () => {
    const r = await mirrorOf({ 'sources.list': ONE_LINE });
    assert.deepEqual(r, { out: 'http://old.example/debian', err: '', code: 0 });
  });
  test('both layouts: deb822 first; a disabled stanza and other repositories are passed over', async () => {
    const disabled = 'Types: deb\nURIs: http://off.example/debian\nSuites: sid\nEnabled: no\n\n';
    const r = await mirrorOf({
      'sources.list': ONE_LINE,
      'sources.list.d/aaa.sources': disabled + 'Types: deb\nURIs: https://pkgs.example/node\nSuites: nodistro\n',
      'sources.list.d/debian.sources': DEB822,
    });
    assert.deepEqual(r, { out: 'http://mirror.example/debian', err: '', code: 0 });
  });
  test('none: exit 1 with one line that says what to do', async () => {
    const r = await mirrorOf({ 'sources.list.d/other.list': 'deb https://pkgs.example/node nodistro main\n' });
    assert.equal(r.code, 1);
    assert.equal(r.out, '');
    assert.equal(r.err.split('\n').length, 1);
    assert.match(r.err, /^flatnet: no Debian mirror in .*sources\.list/);
  });
});

test('missing-packages.sh lists every package on a machine that has none of their commands', async () => {
  const { stdout } = await run('/bin/bash', [join(scripts, 'missing-packages.sh')], { env: { PATH: '/nonexistent' } });
  assert.deepEqual(stdout.trim().split('\n'), [
    'docker.io',
    'etcd-server',
    'etcd-client',
    'busybox-static',
    'iproute2',
    'iptables',
    'iperf3',
    'iputils-arping',
    'ipv6toolkit',
    'util-linux',
    'rpm',
    'kmod',
    'openssl',
    'prometheus',
    'chromium',
  ]);
});

// The cache in /var/cache/flatnet/docker28 lets install-deps.sh skip this fetch on a warm machine: this runs it
// from empty on every CI run, so a broken fresh install cannot hide behind the cache.
test('fetch-docker28.sh into an empty directory unpacks a Docker 28 that runs', { skip: missing('root') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-docker28-'));
  try {
    const env = { ...process.env, FLATNET_DOCKER28_DIR: dir };
    const { stderr } = await run('bash', [join(scripts, 'fetch-docker28.sh')], { env, maxBuffer: 16 << 20 });
    assert.match(stderr, /fetching Docker 28/);
    for (const bin of ['usr/sbin/dockerd', 'usr/bin/docker']) {
      assert.match((await run(join(dir, 'root', bin), ['--version'])).stdout, /^Docker version 28\./);
    }
    assert.match((await run(join(dir, 'root/usr/bin/containerd'), ['--version'])).stdout, /containerd/);
    assert.match((await run(join(dir, 'root/usr/bin/containerd-shim-runc-v2'), ['-v'])).stdout, /containerd-shim/);
    // a second run reuses what is there and says nothing
    const again = await run('bash', [join(scripts, 'fetch-docker28.sh')], { env });
    assert.equal(again.stderr, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
