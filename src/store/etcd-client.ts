import { readFileSync } from 'node:fs';
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError, type IOptions } from 'etcd3';
import type { EtcdSettings } from '../config/settings.js';
import { FlatnetError } from '../errors.js';

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FlatnetError('invalid', `cannot read etcd ${what} ${path}: ${(err as Error).message}`);
  }
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;

/** What EtcdIo needs to know about the client it is handed (the prefix for its txn markers, its time budget). */
export interface EtcdClientProfile {
  prefix: string;
  timeoutMs: number;
}

const DEFAULT_PROFILE: EtcdClientProfile = { prefix: '/flatnet', timeoutMs: 5000 };
const profiles = new WeakMap<Etcd3, EtcdClientProfile>();

/** The settings a client was made with (defaults for a client made elsewhere, e.g. by a test). */
export function etcdClientProfile(etcd: Etcd3): EtcdClientProfile {
  return profiles.get(etcd) ?? DEFAULT_PROFILE;
}

/** A host skipped because it just failed to connect (see hostCooldown). */
export class EtcdHostCoolingDown extends Error {
  constructor(host: string, reason: string) {
    super(`etcd endpoint ${host} is skipped for a moment after failing to connect (${reason})`);
  }
}

/*
 * Errors that prove the request never left this process: no connection to pick (gRPC fails such calls at
 * once), a channel closed before the call started, a stream the server refused unprocessed (HTTP/2
 * REFUSED_STREAM), a host skipped by its cooldown. Only these are re-sent blindly; anything else (a deadline
 * on an open connection, a connection dropped mid-call, "etcdserver: request timed out") may have been
 * applied, and only a caller that can settle that (EtcdIo, with its txn marker) re-sends it.
 */
const UNSENT = /No connection established|Channel closed before call started|Stream refused by server|ECONNREFUSED/;
/** A deadline that passed before any connection was picked: unsent too, but its time is spent. */
const DEADLINE_UNSENT = /Waiting for LB pick|waiting for name resolution|waiting for metadata filters/;

export function isProvablyUnsent(err: unknown): boolean {
  if (err instanceof EtcdHostCoolingDown) return true;
  if (err instanceof GRPCUnavailableError) return UNSENT.test(err.message);
  if (err instanceof GRPCDeadlineExceededError) return DEADLINE_UNSENT.test(err.message);
  return false;
}

const noEvent = (): { dispose(): void } => ({ dispose: () => undefined });
/** etcd3 runs its policies without a signal, and nothing here cancels: one shared never-aborted signal. */
const NEVER_ABORTED = new AbortController().signal;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function policy(execute: Policy['execute']): Policy {
  return { _altReturn: undefined as never, onSuccess: noEvent, onFailure: noEvent, execute };
}

/**
 * The global policy: a call whose send provably never reached etcd goes to the next endpoint (etcd3 picks a
 * new host per attempt) after a short backoff, a few times; nothing else is re-sent here. A deadline spent
 * waiting for a connection is not retried either: the caller's time is gone.
 */
function resendUnsent(hosts: number): Policy {
  const maxAttempts = hosts + 2;
  return policy(async (fn, signal) => {
    const context = { signal: signal ?? NEVER_ABORTED };
    for (let n = 1; ; n++) {
      try {
        return await fn(context);
      } catch (err) {
        if (n >= maxAttempts || !isProvablyUnsent(err) || err instanceof GRPCDeadlineExceededError) throw err;
        await sleep(Math.min(400, 25 * 2 ** n) * (0.5 + Math.random() / 2));
      }
    }
  });
}

/**
 * The per-host policy: after a failure to connect, the host is skipped for a moment (100 ms, doubling, at most
 * 1 s) so that calls go to the other endpoints instead of each waiting on a dead one. Unlike etcd3's default
 * breaker (5 s open after 3 failures) it can outlast an outage by at most 1 s, and it never opens on errors
 * from a reachable etcd.
 */
function hostCooldown(host: string): Policy {
  let failures = 0;
  let until = 0;
  let reason = '';
  return policy(async (fn, signal) => {
    if (Date.now() < until) throw new EtcdHostCoolingDown(host, reason);
    try {
      const out = await fn({ signal: signal ?? NEVER_ABORTED });
      failures = 0;
      return out;
    } catch (err) {
      if (isProvablyUnsent(err)) {
        failures++;
        reason = (err as Error).message;
        until = Date.now() + Math.min(1000, 100 * 2 ** (failures - 1));
      }
      throw err;
    }
  });
}

/** One etcd3 client per process; TLS and authentication come from the settings, never from code. */
export function createEtcdClient(s: EtcdSettings): Etcd3 {
  const options: IOptions = {
    hosts: s.etcdEndpoints,
    dialTimeout: s.etcdTimeoutMs,
    // Unary calls only: a deadline on the lease keep-alive stream would cut it every etcdTimeoutMs.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + s.etcdTimeoutMs }),
    faultHandling: { global: resendUnsent(s.etcdEndpoints.length), host: hostCooldown },
    grpcOptions: {
      // etcd3 drops a host's gRPC clients after a transport error; with the shared subchannel pool the new
      // client would get the same (possibly stalled) connection back, with its own pool it dials afresh.
      'grpc.use_local_subchannel_pool': 1,
      // gRPC's default reconnect backoff grows to 120 s: a member back from a restart would stay unused.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
    },
  };
  const wantsTls = s.etcdEndpoints.some((e) => e.startsWith('https://')) || s.etcdCaFile !== undefined;
  if (wantsTls) {
    options.credentials = {
      rootCertificate: s.etcdCaFile !== undefined ? readPem(s.etcdCaFile, 'CA file') : (undefined as unknown as Buffer),
      ...(s.etcdCertFile !== undefined && s.etcdKeyFile !== undefined
        ? { certChain: readPem(s.etcdCertFile, 'certificate file'), privateKey: readPem(s.etcdKeyFile, 'key file') }
        : {}),
    };
  }
  if (s.etcdUsername !== undefined && s.etcdPassword !== undefined) {
    options.auth = { username: s.etcdUsername, password: s.etcdPassword };
  }
  const etcd = new Etcd3(options);
  profiles.set(etcd, { prefix: s.etcdPrefix ?? DEFAULT_PROFILE.prefix, timeoutMs: s.etcdTimeoutMs });
  return etcd;
}
