import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { FlatnetError } from '../errors.js';
import {
  DEFAULT_CONFIG_FILE,
  DEFAULTS,
  SECRET_KEYS,
  SETTING_KEYS,
  type SettingKey,
  type Settings,
  envName,
  flagName,
  settingsSchema,
} from './settings.js';

export type RawSettings = Partial<Record<SettingKey, string>>;

const KEY_BY_NORMALIZED = new Map<string, SettingKey>(
  SETTING_KEYS.map((k) => [flagName(k).replace(/-/g, '_').toUpperCase(), k]),
);

/**
 * Parses the KEY=VALUE config file. Keys may be written as the environment variable (FLATNET_ETCD_ENDPOINTS),
 * without the prefix (ETCD_ENDPOINTS) or as the flag (etcd-endpoints); '#' starts a comment line.
 */
export function parseConfigFile(text: string, path: string): RawSettings {
  const out: RawSettings = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new FlatnetError('invalid', `${path}:${i + 1}: expected KEY=VALUE`);
    const rawKey = trimmed.slice(0, eq).trim();
    let value = trimmed.slice(eq + 1).trim();
    if (value.length >= 2 && /^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    const normalized = rawKey
      .replace(/-/g, '_')
      .toUpperCase()
      .replace(/^FLATNET_/, '');
    const key = KEY_BY_NORMALIZED.get(normalized);
    if (key === undefined) throw new FlatnetError('invalid', `${path}:${i + 1}: unknown setting "${rawKey}"`);
    out[key] = value;
  });
  return out;
}

function readConfigFile(path: string, explicit: boolean): RawSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new FlatnetError('invalid', `cannot read config file ${path}: ${(err as Error).message}`);
  }
  return parseConfigFile(text, path);
}

function fromEnv(env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

export function defaultHostId(): string {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(id)) return id;
  } catch {
    // no machine-id (containers, minimal images): the hostname is the next stable name
  }
  return hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 64);
}

export interface LoadOptions {
  /** Values given as command-line flags (undefined = not given). */
  flags: RawSettings;
  env?: NodeJS.ProcessEnv;
  /** --config; when given the file must exist. */
  configFile?: string;
}

/** Flags beat environment beat config file beat defaults; the result is validated once, here. */
export function loadSettings(opts: LoadOptions): Settings {
  const env = opts.env ?? process.env;
  const explicitFile = opts.configFile ?? env.FLATNET_CONFIG;
  const file = readConfigFile(explicitFile ?? DEFAULT_CONFIG_FILE, explicitFile !== undefined);
  const flags: RawSettings = {};
  for (const [k, v] of Object.entries(opts.flags) as [SettingKey, string | undefined][]) {
    if (v !== undefined) flags[k] = v;
  }
  const merged: RawSettings = { ...DEFAULTS, hostId: defaultHostId(), ...file, ...fromEnv(env), ...flags };
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path[0];
    const where = typeof key === 'string' ? `--${flagName(key as SettingKey)}: ` : '';
    throw new FlatnetError('invalid', `invalid setting ${where}${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}

/** The settings as they may be logged: secrets replaced. */
export function redactSettings(s: Settings): Record<string, unknown> {
  const out: Record<string, unknown> = { ...s };
  for (const k of SECRET_KEYS) if (out[k] !== undefined) out[k] = '<redacted>';
  return out;
}
