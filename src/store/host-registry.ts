import { hostname as osHostname } from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import type { EtcdIo } from './etcd-io.js';
import { BackgroundWork } from '../util/background-work.js';
import { prefixEnd } from './keys.js';

/**
 * Which flatnet servers exist and which are running. `<prefix>/hosts/<hostId>` lives on a lease that the
 * server keeps alive, so it disappears on its own when the server dies; `<prefix>/known-hosts/<hostId>` is
 * durable (last seen), so a dead host is still listed, as down. Liveness is for operators to look at: nothing
 * is ever freed because a host looks dead (a partitioned host may still be running containers).
 */

export const HOST_LEASE_TTL_SECONDS = 15;
/** How often the durable last-seen time is refreshed while registered. */
const LAST_SEEN_REFRESH_MS = 60_000;
const RETRY_MS = 2_000;

const hostRecordSchema = z.object({
  hostId: z.string(),
  hostname: z.string(),
  version: z.string(),
  startedAt: z.string(),
  /** The IPAM layout this server writes: HOST_INDEX_LAYOUT (address records with host index entries); absent = older. */
  ipamLayout: z.number().int().optional(),
});

/** The layout of servers that keep the host index with every address record (see store/host-index.ts). */
export const HOST_INDEX_LAYOUT = 1;
const knownHostSchema = hostRecordSchema.extend({ lastSeen: z.string() });

export type HostRecord = z.infer<typeof hostRecordSchema>;

export interface HostInfo extends HostRecord {
  alive: boolean;
  /** ISO time; now for a live host, else the last time its server was seen. */
  lastSeen: string;
}

export interface HostRegistrationOptions {
  hostId: string;
  logger: Logger;
  hostname?: string;
  version?: string;
  ttlSeconds?: number;
}

export interface HostRegistration {
  /** Resolves once the host is registered the first time (never rejects: failures are retried). */
  readonly ready: Promise<void>;
  /** Revokes the lease (the host shows as down at once) and records the last-seen time. */
  stop(): Promise<void>;
}

const liveKey = (prefix: string, hostId: string): string => `${prefix}/hosts/${hostId}`;
const knownKey = (prefix: string, hostId: string): string => `${prefix}/known-hosts/${hostId}`;

/**
 * The host keys under one prefix. Reads and plain writes go through EtcdIo; only the lease (which EtcdIo does
 * not offer) uses the etcd3 client itself.
 */
export class HostRegistry {
  constructor(
    private readonly etcd: Etcd3,
    private readonly io: EtcdIo,
    private readonly prefix: string,
  ) {}

  /** Registers this host and keeps it registered (re-granting the lease if etcd loses it) until stop(). */
  start(opts: HostRegistrationOptions): HostRegistration {
    return startHostRegistration(this.etcd, this.io, this.prefix, opts);
  }

  /** Every host ever registered under the prefix, live ones first, then by host id. */
  async list(): Promise<HostInfo[]> {
    const live = `${this.prefix}/hosts/`;
    const known = `${this.prefix}/known-hosts/`;
    const [l, k] = await Promise.all([
      this.io.readRange(live, prefixEnd(live)),
      this.io.readRange(known, prefixEnd(known)),
    ]);
    const text = (snap: typeof l): string[] => [...snap.kvs.values()].map((kv) => kv.value.toString());
    return mergeHosts(text(l), text(k));
  }

  /** Hosts on an older IPAM layout that are alive, or were seen since `seenSince` (the host index backfill waits). */
  async olderLayout(seenSince: Date): Promise<string[]> {
    return (await this.list())
      .filter(
        (h) => (h.ipamLayout ?? 0) < HOST_INDEX_LAYOUT && (h.alive || Date.parse(h.lastSeen) >= seenSince.getTime()),
      )
      .map((h) => h.hostId);
  }

  /** Whether the host's server holds a live lease now. */
  async isAlive(hostId: string): Promise<boolean> {
    const key = liveKey(this.prefix, hostId);
    return (await this.io.read([key])).kvs.has(key);
  }

  /**
   * Drops a retired host's durable entry, only while it has no live lease (compared in the same txn, so a host
   * that registers meanwhile stays). Returns false when the host is alive.
   */
  async forget(hostId: string): Promise<boolean> {
    const key = liveKey(this.prefix, hostId);
    const snap = await this.io.read([key]);
    if (snap.kvs.has(key)) return false;
    return this.io.write({
      expect: [{ key, modRevision: undefined }],
      puts: [],
      deletes: [knownKey(this.prefix, hostId)],
    });
  }
}

function startHostRegistration(
  etcd: Etcd3,
  io: EtcdIo,
  prefix: string,
  opts: HostRegistrationOptions,
): HostRegistration {
  const { hostId, logger } = opts;
  const record: HostRecord = {
    hostId,
    hostname: opts.hostname ?? osHostname(),
    version: opts.version ?? 'unknown',
    startedAt: new Date().toISOString(),
    ipamLayout: HOST_INDEX_LAYOUT,
  };
  const ttl = opts.ttlSeconds ?? HOST_LEASE_TTL_SECONDS;
  let lease: Lease | undefined;
  // The last-seen refresh and the registration retries; a registration itself is not tracked (it uses the etcd3
  // client directly, which stop() must not wait on while etcd is away).
  const work = new BackgroundWork(logger);
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });

  const writeLastSeen = async (): Promise<void> => {
    const value = JSON.stringify({ ...record, lastSeen: new Date().toISOString() });
    await io.write({ expect: [], puts: [{ key: knownKey(prefix, hostId), value }] });
  };
  void work.every('host last-seen refresh', LAST_SEEN_REFRESH_MS, async () => {
    if (lease !== undefined && !work.stopped) await writeLastSeen();
  });

  let retryPending = false;
  const scheduleRetry = (): void => {
    if (work.stopped || retryPending) return;
    retryPending = true;
    work.after('host registration retry', RETRY_MS, async () => {
      retryPending = false;
      void register();
    });
  };

  const register = async (): Promise<void> => {
    if (work.stopped) return;
    const current = etcd.lease(ttl, { autoKeepAlive: true });
    lease = current;
    current.on('lost', (err) => {
      if (lease !== current || work.stopped) return;
      logger.warn({ err: err.message }, 'host registration lease lost; registering again');
      lease = undefined;
      scheduleRetry();
    });
    try {
      await current.put(liveKey(prefix, hostId)).value(JSON.stringify(record));
      await writeLastSeen();
      logger.info({ hostId, ttlSeconds: ttl }, 'host registered');
      markReady();
    } catch (err) {
      if (work.stopped) return;
      logger.warn({ err: (err as Error).message }, 'could not register host in etcd; retrying');
      if (lease === current) lease = undefined;
      current.release();
      scheduleRetry();
    }
  };
  void register();

  return {
    ready,
    async stop() {
      await work.stop();
      const current = lease;
      lease = undefined;
      if (current === undefined) return;
      try {
        await current.revoke();
        await writeLastSeen();
      } catch (err) {
        // the lease expires on its own within its TTL: stopping must not fail because etcd is away
        logger.warn({ err: (err as Error).message }, 'could not deregister host; its entry expires by itself');
        current.release();
      }
    },
  };
}

function parseJson<T>(schema: z.ZodType<T>, raw: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function mergeHosts(live: string[], known: string[]): HostInfo[] {
  const now = new Date().toISOString();
  const byId = new Map<string, HostInfo>();
  for (const raw of known) {
    const k = parseJson(knownHostSchema, raw);
    if (k !== undefined) byId.set(k.hostId, { ...k, alive: false });
  }
  for (const raw of live) {
    const r = parseJson(hostRecordSchema, raw);
    if (r !== undefined) byId.set(r.hostId, { ...r, alive: true, lastSeen: now });
  }
  return [...byId.values()].sort((a, b) => (a.alive === b.alive ? a.hostId.localeCompare(b.hostId) : a.alive ? -1 : 1));
}
