import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSettings } from '../../src/config/load.js';

const NO_FILE = { configFile: '/dev/null' };

test('release cooldown, sticky time and Docker socket: defaults, units, env, refusals', () => {
  const d = loadSettings({ flags: {}, env: {}, ...NO_FILE });
  assert.deepEqual([d.releaseCooldown, d.stickyFor, d.dockerSocket], [300, 86_400, '/var/run/docker.sock']);
  const s = loadSettings({
    flags: { stickyFor: '0' },
    env: { FLATNET_RELEASE_COOLDOWN: '5m', FLATNET_DOCKER_SOCKET: '/run/d.sock' },
    ...NO_FILE,
  });
  assert.deepEqual([s.releaseCooldown, s.stickyFor, s.dockerSocket], [300, 0, '/run/d.sock']);
  assert.equal(
    loadSettings({ flags: { releaseCooldown: '0', stickyFor: '7d' }, env: {}, ...NO_FILE }).stickyFor,
    604_800,
  );
  assert.throws(
    () => loadSettings({ flags: { releaseCooldown: '-1' }, env: {}, ...NO_FILE }),
    /--release-cooldown: a duration/,
  );
  assert.throws(() => loadSettings({ flags: { stickyFor: '1w' }, env: {}, ...NO_FILE }), /--sticky-for: a duration/);
});

test('conflict probe: on by default, off by flag, environment or file spelling, anything else refused', () => {
  assert.equal(loadSettings({ flags: {}, env: {}, ...NO_FILE }).conflictProbe, true);
  assert.equal(loadSettings({ flags: { conflictProbe: 'off' }, env: {}, ...NO_FILE }).conflictProbe, false);
  assert.equal(loadSettings({ flags: {}, env: { FLATNET_CONFLICT_PROBE: 'No' }, ...NO_FILE }).conflictProbe, false);
  assert.equal(
    loadSettings({ flags: { conflictProbe: 'true' }, env: { FLATNET_CONFLICT_PROBE: 'off' }, ...NO_FILE })
      .conflictProbe,
    true,
  );
  assert.throws(
    () => loadSettings({ flags: { conflictProbe: 'maybe' }, env: {}, ...NO_FILE }),
    /--conflict-probe: expected on or off/,
  );
});
