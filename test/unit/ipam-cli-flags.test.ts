import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { subnetFlag } from '../../src/cli/common.js';
import { FlatnetError } from '../../src/errors.js';

/** The built CLI; its etcd is an address nothing listens on, so any etcd contact would fail differently. */
const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

function flatnet(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          FLATNET_ETCD_ENDPOINTS: 'http://127.0.0.1:9',
          FLATNET_ETCD_TIMEOUT_MS: '300',
          FLATNET_CONFIG: '/nonexistent/flatnet.conf',
        },
      },
      (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

test('CLI address flags go through the parsers the plugin API uses', () => {
  assert.equal(subnetFlag('--subnet', '10.66.0.5/24'), '10.66.0.0/24');
  assert.equal(subnetFlag('--subnet', 'fd00::1/64'), 'fd00::/64');
  for (const bad of ['10.66.0.0/99', '10.66.0.0', '10.66.0.0/24x', '300.1.1.1/8', '']) {
    assert.throws(
      () => subnetFlag('--subnet', bad),
      (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid',
      bad,
    );
  }
});

test('bad flag values are refused with one line and exit 2, before etcd is contacted', async () => {
  for (const args of [
    ['ip', 'list', '--subnet', '10.66.0.0/99'],
    ['ip', 'list', '--host', 'not a host'],
    ['ip', 'release', '10.0.0.300'],
    ['ip-range', 'add', '--ip-start', '10.0.0.1/24', '--ip-end', 'nope'],
    ['host-range', 'add', '--ip-start', '10.0.0.1/24', '--ip-end', '10.0.0.9', '--gateway', '10.0.0'],
  ]) {
    const r = await flatnet(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^flatnet: [^\n]+\n$/, args.join(' '));
    assert.doesNotMatch(r.stderr, /etcd/, `${args.join(' ')} was refused before etcd`);
  }
});
