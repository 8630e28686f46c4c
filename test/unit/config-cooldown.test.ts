import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadSettings } from '../../src/config/load.js';

const NO_FILE = { configFile: '/dev/null' };

test('release cooldown, sticky time and Docker socket: defaults, units, env, refusals', () => {
  const d = loadSettings({ flags: {}, env: {}, ...NO_FILE });
  assert.deepEqual([d.releaseCooldown, d.stickyFor, d.dockerSocket], [300, 86_400, '/var/run/docker.sock']);
  const s = loadSettings({ flags: { stickyFor: '0' }, env: { FLATNET_RELEASE_COOLDOWN: '5m', FLATNET_DOCKER_SOCKET: '/run/d.sock' }, ...NO_FILE });
  assert.deepEqual([s.releaseCooldown, s.stickyFor, s.dockerSocket], [300, 0, '/run/d.sock']);
  assert.equal(loadSettings({ flags: { releaseCooldown: '0', stickyFor: '7d' }, env: {}, ...NO_FILE }).stickyFor, 604_800);
  assert.throws(() => loadSettings({ flags: { releaseCooldown: '-1' }, env: {}, ...NO_FILE }), /--release-cooldown: a duration/);
  assert.throws(() => loadSettings({ flags: { stickyFor: '1w' }, env: {}, ...NO_FILE }), /--sticky-for: a duration/);
});
