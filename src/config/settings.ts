import { z } from 'zod';
import { HOST_ID } from '../net/ids.js';

/** Every setting flatnet reads, with its flag, environment and config-file spelling derived from the key. */
export const SETTING_KEYS = [
  'socket',
  'etcdEndpoints',
  'etcdPrefix',
  'etcdCaFile',
  'etcdCertFile',
  'etcdKeyFile',
  'etcdUsername',
  'etcdPassword',
  'etcdTimeoutMs',
  'hostId',
  'logLevel',
  'stateDir',
  'metricsListen',
  'reconcileIntervalMs',
  'reconcileGraceMs',
  'releaseRetryMs',
  'releaseCooldown',
  'stickyFor',
  'dockerSocket',
  'conflictProbe',
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

const endpointUrl = z
  .string()
  .trim()
  .regex(/^https?:\/\/[^\s/]+$/, 'an etcd endpoint is http(s)://host:port');

// Defaults in the schema too: settings built in code (tests, embedders) get them without the loader.
const DEFAULT_RELEASE_COOLDOWN = '300';
const DEFAULT_STICKY_FOR = '24h';
const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds, plain or with a unit: 300, 90s, 5m, 24h, 7d; 0 turns the feature off. */
const duration = z
  .string()
  .trim()
  .regex(/^\d{1,9}[smhd]?$/, 'a duration is whole seconds or a number with s, m, h or d (300, 5m, 24h)')
  .transform((v) => Number(v.replace(/[smhd]$/, '')) * (UNIT_SECONDS[v.replace(/^\d+/, '')] ?? 1))
  .pipe(
    z
      .number()
      .int()
      .min(0)
      .max(10 * 365 * 86_400, 'a duration is at most 10 years'),
  );

/** on/off (also true/false, yes/no, 1/0). */
const onOff = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(['on', 'off', 'true', 'false', 'yes', 'no', '1', '0'], { message: 'expected on or off' }))
  .transform((v) => ['on', 'true', 'yes', '1'].includes(v));

/** HOST:PORT for a TCP listener (metrics, dashboard); IPv6 hosts in brackets. */
export const listenAddress = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost):\d{1,5}$/, 'a listen address is HOST:PORT (e.g. 127.0.0.1:9471)');

export const settingsSchema = z
  .object({
    socket: z.string().min(1).max(107, 'a Unix socket path is at most 107 bytes'),
    etcdEndpoints: z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((e) => e.trim())
          .filter((e) => e.length > 0),
      )
      .pipe(z.array(endpointUrl).min(1, 'at least one etcd endpoint is needed')),
    etcdPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._\-/]*[A-Za-z0-9._-]$/, 'the etcd prefix is an absolute key path such as /flatnet'),
    etcdCaFile: z.string().min(1).optional(),
    etcdCertFile: z.string().min(1).optional(),
    etcdKeyFile: z.string().min(1).optional(),
    etcdUsername: z.string().min(1).optional(),
    etcdPassword: z.string().min(1).optional(),
    etcdTimeoutMs: z.coerce.number().int().min(100).max(600_000),
    hostId: z.string().regex(HOST_ID, 'a host id is 1-64 of [A-Za-z0-9._-]'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    stateDir: z.string().min(1),
    metricsListen: listenAddress.optional(),
    // Defaults here as well as in DEFAULTS: settings parsed without the loader (tests, the lab) get them too.
    /** How often the server compares etcd's addresses of this host with its endpoints (0 = only at start). */
    reconcileIntervalMs: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
    /** An address younger than this is never freed by the reconcile. */
    reconcileGraceMs: z.coerce.number().int().min(0).max(86_400_000).default(120_000),
    /** How often journaled releases are retried while etcd is unreachable. */
    releaseRetryMs: z.coerce.number().int().min(100).max(3_600_000).default(5000),
    /** Seconds a released address stays out of reuse (0 = off). */
    releaseCooldown: duration.prefault(DEFAULT_RELEASE_COOLDOWN),
    /** Seconds a named container's released address is parked for that name (0 = off). */
    stickyFor: duration.prefault(DEFAULT_STICKY_FOR),
    /**
     * The local dockerd's API, read only and never on a plugin call's path: the engine version, which container
     * holds an endpoint, the endpoints dockerd knows (reconcile; unreachable = the state dir alone is the view).
     */
    dockerSocket: z.string().min(1).max(107, 'a Unix socket path is at most 107 bytes').default(DEFAULT_DOCKER_SOCKET),
    /**
     * RFC 5227 conflict detection: the server probes the addresses it hands out next with ARP from the bridge, in
     * the background, and records those a machine outside flatnet answers for.
     */
    conflictProbe: onOff.prefault('on'),
  })
  .refine((s) => (s.etcdCertFile === undefined) === (s.etcdKeyFile === undefined), {
    message: 'etcd-cert-file and etcd-key-file go together',
  })
  .refine((s) => (s.etcdUsername === undefined) === (s.etcdPassword === undefined), {
    message: 'etcd-username and etcd-password go together',
  });

export type Settings = z.infer<typeof settingsSchema>;

export type EtcdSettings = Pick<
  Settings,
  | 'etcdEndpoints'
  | 'etcdPrefix'
  | 'etcdCaFile'
  | 'etcdCertFile'
  | 'etcdKeyFile'
  | 'etcdUsername'
  | 'etcdPassword'
  | 'etcdTimeoutMs'
>;

export const DEFAULT_CONFIG_FILE = '/etc/flatnet/flatnet.conf';

/** Defaults for everything but hostId, which is read from the machine (see load.ts). */
export const DEFAULTS: Partial<Record<SettingKey, string>> = {
  socket: '/run/docker/plugins/flatnet.sock',
  etcdEndpoints: 'http://127.0.0.1:2379',
  etcdPrefix: '/flatnet',
  etcdTimeoutMs: '5000',
  logLevel: 'info',
  stateDir: '/var/lib/flatnet',
  reconcileIntervalMs: '60000',
  reconcileGraceMs: '120000',
  releaseRetryMs: '5000',
  releaseCooldown: DEFAULT_RELEASE_COOLDOWN,
  stickyFor: DEFAULT_STICKY_FOR,
  dockerSocket: DEFAULT_DOCKER_SOCKET,
  conflictProbe: 'on',
};

/** etcdEndpoints -> etcd-endpoints */
export function flagName(key: SettingKey): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** etcdEndpoints -> FLATNET_ETCD_ENDPOINTS */
export function envName(key: SettingKey): string {
  return `FLATNET_${flagName(key).replace(/-/g, '_').toUpperCase()}`;
}

/** Settings whose values must never reach a log line or an error message. */
export const SECRET_KEYS: ReadonlySet<SettingKey> = new Set(['etcdPassword']);
