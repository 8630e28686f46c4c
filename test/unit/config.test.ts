import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSettings, parseConfigFile, redactSettings } from '../../src/config/load.js';
import { FlatnetError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-conf-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function conf(text: string): string {
  const p = join(dir, `c${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(p, text);
  return p;
}

test('flags beat env beat file beat defaults', () => {
  const file = conf('FLATNET_ETCD_PREFIX=/fromfile\nETCD_ENDPOINTS=http://10.0.0.1:2379\nlog-level=warn\n');
  const s = loadSettings({
    flags: { logLevel: 'debug' },
    env: { FLATNET_ETCD_ENDPOINTS: 'http://127.0.0.1:1,http://127.0.0.1:2' },
    configFile: file,
  });
  assert.equal(s.etcdPrefix, '/fromfile');
  assert.deepEqual(s.etcdEndpoints, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.socket, '/run/docker/plugins/flatnet.sock');
  assert.match(s.hostId, /^[A-Za-z0-9]/);
});

test('a missing default config file is fine, a missing explicit one is an error', () => {
  assert.doesNotThrow(() => loadSettings({ flags: {}, env: {} }));
  assert.throws(
    () => loadSettings({ flags: {}, env: {}, configFile: join(dir, 'nope.conf') }),
    /cannot read config file/,
  );
});

test('unknown keys and malformed lines name the line', () => {
  assert.throws(() => parseConfigFile('# c\nBOGUS=1\n', 'x.conf'), /x.conf:2: unknown setting "BOGUS"/);
  assert.throws(() => parseConfigFile('no equals sign', 'x.conf'), /x.conf:1: expected KEY=VALUE/);
});

test('invalid values are refused with the flag name', () => {
  assert.throws(
    () => loadSettings({ flags: { etcdEndpoints: 'ftp://x' }, env: {} }),
    (e: unknown) => e instanceof FlatnetError && e.kind === 'invalid' && /--etcd-endpoints/.test(e.message),
  );
  assert.throws(() => loadSettings({ flags: { hostId: 'bad id!' }, env: {} }), /--host-id/);
  assert.throws(() => loadSettings({ flags: { etcdUsername: 'u' }, env: {} }), /go together/);
});

test('secrets are redacted for logging', () => {
  const s = loadSettings({ flags: { etcdUsername: 'u', etcdPassword: 'hunter2' }, env: {} });
  assert.equal(s.etcdPassword, 'hunter2');
  assert.equal(JSON.stringify(redactSettings(s)).includes('hunter2'), false);
});
