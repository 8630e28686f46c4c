import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { parseConfigFile } from '../../src/config/load.js';
import { SETTING_KEYS, envName } from '../../src/config/settings.js';

const dir = join(import.meta.dirname, '..', '..', '..', 'plugin-config');
const read = (name: string): string => readFileSync(join(dir, name), 'utf8');

const pluginConfigSchema = z.object({
  entrypoint: z.array(z.string()),
  interface: z.object({ types: z.array(z.string()), socket: z.string() }),
  network: z.object({ type: z.string() }),
  linux: z.object({ capabilities: z.array(z.string()) }),
  mounts: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      source: z.string(),
      destination: z.string(),
      options: z.array(z.string()),
      settable: z.array(z.string()),
    }),
  ),
  env: z.array(z.object({ name: z.string(), settable: z.array(z.string()), value: z.string() })),
});

test('the managed plugin config declares both drivers, host networking and settable etcd settings', () => {
  const c = pluginConfigSchema.parse(JSON.parse(read('config.json')));
  assert.deepEqual(c.interface, {
    types: ['docker.networkdriver/1.0', 'docker.ipamdriver/1.0'],
    socket: 'flatnet.sock',
  });
  assert.equal(c.network.type, 'host');
  assert.ok(c.linux.capabilities.includes('CAP_NET_ADMIN'));
  assert.deepEqual(c.entrypoint.slice(-3), ['server', '--socket', '/run/docker/plugins/flatnet.sock']);
  const endpoints = c.env.find((e) => e.name === 'FLATNET_ETCD_ENDPOINTS');
  // empty by default: an empty variable is ignored, so flatnet.conf (or the built-in default) decides
  assert.deepEqual(endpoints && [endpoints.settable, endpoints.value], [['value'], '']);
  for (const e of c.env)
    assert.ok(
      SETTING_KEYS.some((k) => envName(k) === e.name),
      `${e.name} is a flatnet setting`,
    );
  assert.deepEqual(c.mounts.map((m) => m.destination).sort(), ['/etc/flatnet', '/etc/machine-id', '/var/lib/flatnet']);
});

test('every flatnet setting can be given to the managed plugin: docker plugin set VAR=..., a mount, or fixed by the plugin', () => {
  const c = pluginConfigSchema.parse(JSON.parse(read('config.json')));
  const env = new Set(c.env.map((e) => e.name));
  // socket: the entrypoint's --socket (Docker fixes the plugin's socket); stateDir: the "state" mount's source;
  // dockerSocket: the plugin has no view of dockerd's API (the reconcile then trusts the state dir alone)
  const notEnv: Record<string, string> = { socket: '--socket', stateDir: 'state mount', dockerSocket: 'not reachable' };
  for (const key of SETTING_KEYS) {
    if (notEnv[key] !== undefined) continue;
    assert.ok(env.has(envName(key)), `${envName(key)} is settable with docker plugin set`);
  }
  assert.ok(
    c.mounts.some((m) => m.name === 'state' && m.destination === '/var/lib/flatnet' && m.settable.includes('source')),
  );
  assert.ok(
    c.mounts.some((m) => m.name === 'config' && m.destination === '/etc/flatnet' && m.settable.includes('source')),
  );
});

test('flatnet.conf documents every setting, and each line parses once uncommented', () => {
  const text = read('flatnet.conf');
  for (const key of SETTING_KEYS)
    assert.match(text, new RegExp(`^#${envName(key)}=`, 'm'), `${envName(key)} is documented`);
  const uncommented = text
    .split('\n')
    .map((l) => l.replace(/^#(FLATNET_)/, '$1'))
    .filter((l) => !/^FLATNET_[A-Z_]+=$/.test(l))
    .join('\n');
  const parsed = parseConfigFile(uncommented, 'flatnet.conf');
  // the password and host id examples are left empty on purpose (no sensible default to show)
  assert.deepEqual(
    Object.keys(parsed).sort(),
    SETTING_KEYS.filter((k) => k !== 'etcdPassword' && k !== 'hostId').sort(),
  );
});

test('the systemd unit starts before Docker and restarts on failure', () => {
  const unit = read('flatnet.service');
  for (const line of [
    'Before=docker.service',
    'After=network-online.target',
    'Wants=network-online.target',
    'Restart=on-failure',
    'ExecStart=/usr/bin/flatnet server',
  ]) {
    assert.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}$`, 'm'), line);
  }
});
