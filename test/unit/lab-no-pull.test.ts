import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guardNoPull, LabPullRefused } from '../../src/lab/no-pull.js';

test('run and create never pull: --pull=never goes right after the command', () => {
  assert.deepEqual(guardNoPull(['run', '-d', '--net', 'lan', 'bb', 'sleep', '1']), [
    'run',
    '--pull=never',
    '-d',
    '--net',
    'lan',
    'bb',
    'sleep',
    '1',
  ]);
  assert.deepEqual(guardNoPull(['container', 'create', 'bb']), ['container', 'create', '--pull=never', 'bb']);
  assert.deepEqual(guardNoPull(['run', '--pull=never', 'bb']), ['run', '--pull=never', 'bb']);
});

test('services never resolve their image at a registry', () => {
  assert.deepEqual(guardNoPull(['service', 'create', '--name', 'web', 'bb']), [
    'service',
    'create',
    '--no-resolve-image',
    '--name',
    'web',
    'bb',
  ]);
  assert.deepEqual(guardNoPull(['service', 'update', '--no-resolve-image', 'web']), [
    'service',
    'update',
    '--no-resolve-image',
    'web',
  ]);
  assert.deepEqual(guardNoPull(['stack', 'deploy', '-c', 'f.yml', 'st']), [
    'stack',
    'deploy',
    '--resolve-image=never',
    '-c',
    'f.yml',
    'st',
  ]);
  assert.deepEqual(guardNoPull(['stack', 'deploy', '--resolve-image=never', 'st']), [
    'stack',
    'deploy',
    '--resolve-image=never',
    'st',
  ]);
});

test('downloads and pulling run flags are refused; other commands pass unchanged', () => {
  for (const args of [
    ['pull', 'busybox'],
    ['image', 'pull', 'x'],
    ['plugin', 'install', 'x'],
    ['run', '--pull=always', 'bb'],
    ['create', '--pull', 'missing', 'bb'],
    ['stack', 'deploy', '--resolve-image', 'always', 'st'],
    ['stack', 'deploy', '--resolve-image=changed', 'st'],
  ]) {
    assert.throws(() => guardNoPull(args), LabPullRefused, args.join(' '));
  }
  assert.deepEqual(guardNoPull(['ps', '-aq']), ['ps', '-aq']);
  assert.deepEqual(guardNoPull(['service', 'rm', 'web']), ['service', 'rm', 'web']);
  assert.deepEqual(guardNoPull(['exec', 'c1', 'run']), ['exec', 'c1', 'run']);
});
