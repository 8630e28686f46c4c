import type { Command } from 'commander';
import type { Etcd3 } from 'etcd3';
import { loadSettings, type RawSettings } from '../config/load.js';
import { SETTING_KEYS, type Settings, envName, flagName } from '../config/settings.js';
import type { IpamAdmin } from '../ipam/admin.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createEtcdClient } from '../store/etcd-client.js';

const SETTING_HELP: Record<(typeof SETTING_KEYS)[number], string> = {
  socket: 'plugin socket path',
  etcdEndpoints: 'comma-separated etcd client URLs',
  etcdPrefix: 'etcd key prefix',
  etcdCaFile: 'CA bundle for etcd TLS',
  etcdCertFile: 'client certificate for etcd TLS',
  etcdKeyFile: 'client key for etcd TLS',
  etcdUsername: 'etcd user',
  etcdPassword: `etcd password (visible in ps: prefer ${envName('etcdPassword')})`,
  etcdTimeoutMs: 'etcd dial/request timeout in ms',
  hostId: 'this host\'s id (default: /etc/machine-id)',
  logLevel: 'fatal|error|warn|info|debug|trace|silent',
  stateDir: 'local state directory',
  metricsListen: 'HOST:PORT for Prometheus metrics',
  dockerSocket: 'the local dockerd API socket (asked for the engine version)',
};

/** What the top-level error handler needs to word a failure: where etcd was, and which strings must not show. */
export const failureContext: { etcdEndpoints?: string[]; secrets: string[]; explicitLogLevel?: boolean } = { secrets: [] };

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

/** Runs `fn` with an etcd client, always closed afterwards so the process can exit. */
export async function withEtcd<T>(settings: Settings, fn: (etcd: Etcd3) => Promise<T>): Promise<T> {
  const etcd = createEtcdClient(settings);
  try {
    return await fn(etcd);
  } finally {
    etcd.close();
  }
}

/** Runs `fn` with the IPAM admin over etcd (loaded lazily: commands that need no etcd don't load the store). */
export async function withAdmin<T>(
  settings: Settings,
  fn: (admin: IpamAdmin, etcd: Etcd3) => Promise<T>,
): Promise<T> {
  const { EtcdIpamAdmin } = await import('../ipam/etcd-ipam-admin.js');
  return withEtcd(settings, (etcd) =>
    fn(new EtcdIpamAdmin({ etcd, prefix: settings.etcdPrefix, logger: cliLogger(settings) }), etcd),
  );
}
