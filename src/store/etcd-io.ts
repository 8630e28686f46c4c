import type { Etcd3, ICompare, IRequestOp } from 'etcd3';
import { FlatnetError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { etcdTxnRetries, etcdTxnSeconds } from '../observability/metrics.js';

/**
 * The store's only door to etcd: consistent multi-key reads (one round trip) and compare-and-write txns.
 * Anything etcd throws becomes FlatnetError('unavailable') so that an unreachable cluster never crashes a caller.
 */
export interface Kv {
  key: string;
  value: Buffer;
  modRevision: string;
  createRevision: string;
}

export interface Snapshot {
  revision: string;
  kvs: Map<string, Kv>;
}

/** Expect this key's mod revision, or (undefined) that it does not exist. */
export interface Expect {
  key: string;
  modRevision: string | undefined;
}

export interface Write {
  expect: Expect[];
  /** No key in [start, end) was modified after `revision` (range compare, etcd >= 3.3). */
  unchangedSince?: { start: string; end: string; revision: string }[];
  puts: { key: string; value: Buffer | string }[];
  deletes?: string[];
  deleteRanges?: { start: string; end: string }[];
}

export const MAX_ATTEMPTS = 20;
const b = (s: string): Buffer => Buffer.from(s);

export class EtcdIo {
  constructor(
    private readonly etcd: Etcd3,
    private readonly logger: Logger,
  ) {}

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof FlatnetError) throw err;
      this.logger.warn({ err: errorMessage(err), what }, 'etcd call failed');
      throw new FlatnetError('unavailable', `etcd did not answer (${what}): ${errorMessage(err)}; check that the etcd endpoints are reachable.`, { cause: err });
    }
  }

  /** Reads several keys at one revision in one round trip. */
  async read(keys: string[]): Promise<Snapshot> {
    const res = await this.call('read', () =>
      this.etcd.kv.txn({ compare: [], success: keys.map((k) => ({ request_range: { key: b(k) } })), failure: [] }),
    );
    const kvs = new Map<string, Kv>();
    for (const r of res.responses) {
      for (const kv of r.response_range?.kvs ?? []) {
        const key = kv.key.toString();
        kvs.set(key, { key, value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
      }
    }
    return { revision: res.header.revision, kvs };
  }

  /** All keys in [start, end), optionally at a given revision, with the revision read. */
  async readRange(start: string, end: string, opts: { keysOnly?: boolean; countOnly?: boolean } = {}): Promise<Snapshot & { count: number }> {
    const res = await this.call('range read', () =>
      this.etcd.kv.range({ key: b(start), range_end: b(end), keys_only: opts.keysOnly ?? false, count_only: opts.countOnly ?? false }),
    );
    const kvs = new Map<string, Kv>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      kvs.set(key, { key, value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
    }
    return { revision: res.header.revision, kvs, count: Number(res.count) };
  }

  /** One txn attempt: true when every expectation held and the writes happened. */
  async write(w: Write): Promise<boolean> {
    return (await this.writeAt(w)) !== undefined;
  }

  /** One txn attempt: the revision the writes got, or undefined when an expectation failed. */
  async writeAt(w: Write): Promise<string | undefined> {
    const compare: ICompare[] = w.expect.map((e) =>
      e.modRevision === undefined
        ? { key: b(e.key), target: 'Create', result: 'Equal', create_revision: 0 }
        : { key: b(e.key), target: 'Mod', result: 'Equal', mod_revision: e.modRevision },
    );
    for (const u of w.unchangedSince ?? []) {
      compare.push({ key: b(u.start), range_end: b(u.end), target: 'Mod', result: 'Less', mod_revision: String(BigInt(u.revision) + 1n) });
    }
    const success: IRequestOp[] = [
      ...w.puts.map((p) => ({ request_put: { key: b(p.key), value: typeof p.value === 'string' ? b(p.value) : p.value } })),
      ...(w.deletes ?? []).map((k) => ({ request_delete_range: { key: b(k) } })),
      ...(w.deleteRanges ?? []).map((r) => ({ request_delete_range: { key: b(r.start), range_end: b(r.end) } })),
    ];
    const stop = etcdTxnSeconds.startTimer();
    try {
      const res = await this.call('txn', () => this.etcd.kv.txn({ compare, success, failure: [] }));
      return res.succeeded ? res.header.revision : undefined;
    } finally {
      stop();
    }
  }

  /**
   * Runs read-decide-write attempts until one commits (attempt returns a value) or MAX_ATTEMPTS conflicts
   * (attempt returns undefined) have passed; backs off with jitter so competing hosts drift apart.
   */
  async retrying<T>(what: string, attempt: (n: number) => Promise<T | undefined>): Promise<T> {
    for (let n = 0; n < MAX_ATTEMPTS; n++) {
      const out = await attempt(n);
      if (out !== undefined) return out;
      etcdTxnRetries.inc();
      const ceiling = Math.min(50, 2 ** Math.min(n, 6));
      await new Promise((r) => setTimeout(r, Math.random() * ceiling));
    }
    this.logger.warn({ what }, 'etcd txn kept conflicting');
    throw new FlatnetError('unavailable', `Too many concurrent changes while trying to ${what}; try again.`);
  }
}
