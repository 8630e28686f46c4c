import type { Command } from 'commander';
import { loadSettings, type RawSettings } from '../config/load.js';
import { SETTING_KEYS, type Settings, envName, flagName } from '../config/settings.js';
import { FlatnetError } from '../errors.js';
import type { IpamAdmin } from '../ipam/contract.js';
import { formatSubnet, parseAddress, parseSubnet } from '../net/address.js';
import { parseRangeSpec } from '../ipam/core/range-spec.js';
import { isHostId } from '../net/ids.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { EtcdStores } from '../store/etcd-stores.js';
import { coolingFrom } from '../agents/cooling-options.js';

const SETTING_HELP: Record<(typeof SETTING_KEYS)[number], string> = {
  socket: 'plugin socket path',
  etcdEndpoints: 'comma-separated etcd client URLs',
  etcdPrefix: 'etcd key prefix',
  etcdCaFile: 'CA bundle for etcd TLS',
  etcdCertFile: 'client certificate for etcd TLS',
  etcdKeyFile: 'client key for etcd TLS',
  etcdUsername: 'etcd user',
  etcdPassword: `etcd password (visible in ps: prefer ${envName('etcdPassword')})`,
  etcdTimeoutMs: 'ms one etcd read or write may take, re-sends included',
  hostId: "this host's id (default: /etc/machine-id)",
  logLevel: 'fatal|error|warn|info|debug|trace|silent',
  stateDir: 'local state directory',
  metricsListen: 'HOST:PORT for Prometheus metrics',
  reconcileIntervalMs: 'ms between address reconciles (0 = at start only)',
  reconcileGraceMs: 'ms an address is left alone after its allocation',
  releaseRetryMs: 'ms between retries of journaled releases',
  dockerSocket: 'the local dockerd API socket (read only: engine version, endpoint holders)',
  conflictProbe:
    'probe the next addresses with ARP from the bridge and record those a machine outside flatnet answers for: on|off (default on)',
  releaseCooldown: 'seconds (or 5m, 1h) before a released address is handed out again; 0 = off',
  stickyFor: "how long a named container's released address is kept for that name (24h); 0 = off",
};

/** What the top-level error handler needs to word a failure: where etcd was, and which strings must not show. */
export const failureContext: { etcdEndpoints?: string[]; secrets: string[]; explicitLogLevel?: boolean } = {
  secrets: [],
};

/** Adds --config and one flag per setting; every command takes them. */
export function withSettingsFlags(cmd: Command): Command {
  cmd.option('--config <file>', 'config file (default /etc/flatnet/flatnet.conf)');
  for (const key of SETTING_KEYS) cmd.option(`--${flagName(key)} <value>`, SETTING_HELP[key]);
  return cmd;
}

/** flags > env > file, validated by the shared loader. */
export function settingsFrom(cmd: Command, env: NodeJS.ProcessEnv = process.env): Settings {
  const opts = cmd.opts<Record<string, string | undefined>>();
  const flags: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const v = opts[key];
    if (typeof v === 'string') flags[key] = v;
  }
  if (flags.etcdPassword !== undefined) {
    failureContext.secrets.push(flags.etcdPassword);
    process.stderr.write(
      `flatnet: warning: --etcd-password is visible to every user in ps; set ${envName('etcdPassword')} instead\n`,
    );
  }
  failureContext.explicitLogLevel = flags.logLevel !== undefined || (env.FLATNET_LOG_LEVEL ?? '') !== '';
  const configFile = opts.config;
  const settings = loadSettings({ flags, env, ...(configFile !== undefined ? { configFile } : {}) });
  failureContext.etcdEndpoints = settings.etcdEndpoints;
  if (settings.etcdPassword !== undefined) failureContext.secrets.push(settings.etcdPassword);
  return settings;
}

/**
 * Admin commands print their result and at most one error line: they log only when --log-level or
 * FLATNET_LOG_LEVEL asks for it (the config file's level is the server's).
 */
export function cliLogger(settings: Settings): Logger {
  return createLogger(failureContext.explicitLogLevel ? settings.logLevel : 'silent', 'flatnet-cli');
}

/**
 * Runs `fn` with the IPAM admin and the stores it is built on (host registry), over one etcd client that is
 * always closed afterwards so the process can exit. Loaded lazily: commands that need no etcd don't load it.
 */
export async function withAdmin<T>(
  settings: Settings,
  fn: (admin: IpamAdmin, stores: EtcdStores) => Promise<T>,
): Promise<T> {
  const [{ EtcdStores }, { IpamAdminService }] = await Promise.all([
    import('../store/etcd-stores.js'),
    import('../ipam/services/admin-service.js'),
  ]);
  const logger = cliLogger(settings);
  const stores = EtcdStores.open(settings, logger);
  try {
    return await fn(new IpamAdminService(stores.ipam, logger, coolingFrom(settings)), stores);
  } finally {
    stores.close();
  }
}

/*
 * Flag parsers: a CLI value goes through the same parser as the plugin API's (src/net), and a bad one is refused
 * before anything is read or changed.
 */

/** --subnet: a CIDR, canonical as pools are named (10.20.0.5/24 names 10.20.0.0/24). */
export function subnetFlag(flag: string, value: string): string {
  try {
    return formatSubnet(parseSubnet(value));
  } catch (err) {
    throw new FlatnetError('invalid', `${flag} ${(err as Error).message}`);
  }
}

/** --host: a host id as the server's --host-id accepts it. */
export function hostIdFlag(flag: string, value: string): string {
  if (!isHostId(value))
    throw new FlatnetError(
      'invalid',
      `${flag} "${value}" is not a host id (1-64 of [A-Za-z0-9._-], starting with a letter or digit)`,
    );
  return value;
}

/** An address argument or flag (ip release, --gateway): a plain IPv4 or IPv6 address. */
export function addressFlag(flag: string, value: string): string {
  try {
    parseAddress(value);
  } catch (err) {
    throw new FlatnetError('invalid', `${flag} ${(err as Error).message}`);
  }
  return value;
}

/** --ip-start/--ip-end: checked as the admin will read them (same parser), before etcd is contacted. */
export function rangeFlags(start: string, end: string): { start: string; end: string } {
  parseRangeSpec(start, end);
  return { start, end };
}
