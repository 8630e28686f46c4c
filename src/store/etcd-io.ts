import { randomUUID } from 'node:crypto';
import {
  type Etcd3,
  EtcdLeaseInvalidError,
  type ICompare,
  type IRequestOp,
  type ITxnResponse,
  isRecoverableError,
} from 'etcd3';
import { FlatnetError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { etcdTxnRetries, etcdTxnSeconds } from '../observability/metrics.js';
import { EtcdHostCoolingDown, etcdClientProfile, isProvablyUnsent } from './etcd-client.js';
import { addCost, fits, MARKER_COST, NO_COST, opBytes, splitByBudget, type TxnCost } from './txn-budget.js';

/** A key as read: its value and the revisions a compare needs. */
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

export interface EtcdIoOptions {
  /** Key prefix of the txn markers (default: the client's etcd prefix, see createEtcdClient). */
  prefix?: string;
  /** Time one read or write may take, re-sends included (default: the client's etcdTimeoutMs). */
  budgetMs?: number;
}

export const MAX_ATTEMPTS = 20;
/** Keys per page of a paged range read (readPaged): an address record is ~150 bytes, so a page is ~150 kB. */
export const DEFAULT_PAGE_SIZE = 1000;
/*
 * Marker lease: granted lazily, used for new markers for LEASE_USE_MS (+ LEASE_GRACE_MS while its successor is
 * granted), then replaced by a fresh one (the old one simply expires). So every marker lives at least
 * MARKER_TTL_S - LEASE_USE_MS - LEASE_GRACE_MS (90 s) and at most MARKER_TTL_S (180 s): far longer
 * than any send can be in flight (the budget is seconds), and no keep-alive stream or timer is needed (a CLI
 * process exits as soon as it closes its client). Expiry deletes a lease's markers in one go; rotating every
 * minute keeps that batch small.
 */
const MARKER_TTL_S = 180;
const LEASE_USE_MS = 60_000;
const LEASE_GRACE_MS = 30_000;
const COMMITTED = 'c';
const FENCED = 'f';
/** How long a write given up on is still checked in the background (well inside the markers' life). */
const FENCE_WINDOW_MS = 60_000;
const b = (s: string): Buffer => Buffer.from(s);
const sleep = (ms: number, unref = false): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(r, ms);
    if (unref) t.unref();
  });

/** What a write spends of etcd's txn limits, the marker included. */
export function writeCost(w: Write): TxnCost {
  let cost = MARKER_COST;
  for (const e of w.expect) cost = addCost(cost, { ...NO_COST, compares: 1, bytes: opBytes(e.key) });
  for (const u of w.unchangedSince ?? [])
    cost = addCost(cost, { ...NO_COST, compares: 1, bytes: opBytes(u.start, u.end) });
  for (const p of w.puts) cost = addCost(cost, { ...NO_COST, writes: 1, bytes: opBytes(p.key, p.value) });
  for (const d of w.deletes ?? []) cost = addCost(cost, { ...NO_COST, writes: 1, bytes: opBytes(d) });
  for (const r of w.deleteRanges ?? []) cost = addCost(cost, { ...NO_COST, writes: 1, bytes: opBytes(r.start, r.end) });
  return cost;
}

/** Transport trouble worth another send; anything else is etcd's definite answer (bad request, no permission). */
function isTransient(err: unknown): boolean {
  // gRPC's own "Received message larger than max" is RESOURCE_EXHAUSTED like etcd's "too many requests", but no
  // re-send can ever fit it: say so at once.
  if (err instanceof Error && /larger than max/.test(err.message)) return false;
  return err instanceof EtcdHostCoolingDown || (err instanceof Error && isRecoverableError(err));
}

/** The error to report: a host skipped by its cooldown says less than the failure that started the cooldown. */
function mostTelling(before: unknown, now: unknown): unknown {
  return now instanceof EtcdHostCoolingDown && before !== undefined ? before : now;
}

/** Backoff between sends: 50 ms doubling to 400 ms, jittered; an election (1-3 s) takes a handful of sends. */
function pause(n: number): number {
  return Math.min(400, 50 * 2 ** n) * (0.5 + Math.random() / 2);
}

interface Granted {
  id: Promise<string>;
  /** When the grant was sent: the lease expires no earlier than since + MARKER_TTL_S. */
  since: number;
  value?: string;
}

/**
 * One marker lease per etcd client, shared by every EtcdIo on it. The next lease is granted while the current
 * one is still used (for up to LEASE_GRACE_MS more), so rotation adds no round trip to a write.
 */
class MarkerLease {
  private current: Granted | undefined;
  private next: Granted | undefined;

  constructor(private readonly etcd: Etcd3) {}

  id(deadline: number): Promise<string> {
    const age = this.current === undefined ? Infinity : Date.now() - this.current.since;
    if (age > LEASE_USE_MS && this.next === undefined) this.next = this.grant(deadline);
    if (this.current !== undefined && age <= LEASE_USE_MS + LEASE_GRACE_MS) return this.current.id;
    return (this.next ?? (this.current as Granted)).id;
  }

  private grant(deadline: number): Granted {
    // A re-sent grant only leaves a spare lease that holds nothing and expires.
    const entry: Granted = { since: Date.now(), id: Promise.resolve('') };
    entry.id = this.etcd.leaseClient
      .leaseGrant({ TTL: MARKER_TTL_S }, { deadline: new Date(deadline) })
      .then((r) => r.ID);
    entry.id.then(
      (value) => {
        entry.value = value;
        if (this.next === entry) {
          this.current = entry;
          this.next = undefined;
        }
      },
      () => {
        if (this.next === entry) this.next = undefined;
      },
    );
    return entry;
  }

  /** etcd no longer knows this lease (it expired, or etcd was restored): the next marker gets a new one. */
  drop(id: string): void {
    if (this.current?.value === id) this.current = undefined;
  }
}

const markerLeases = new WeakMap<Etcd3, MarkerLease>();

/**
 * The store's only door to etcd: consistent multi-key reads (one round trip) and compare-and-write txns.
 * Anything etcd throws becomes FlatnetError('unavailable') so that an unreachable cluster never crashes a caller.
 *
 * Every write settles its outcome here, so that a caller only ever sees "committed" or "conflict":
 * each txn carries a marker key P/txn/<uuid> (compare: absent; put: "c", on a short-lived lease). A send
 * that gets no answer (deadline, dropped connection, leader lost) is sent again, identical, with backoff,
 * until etcd answers or the time budget (etcdTimeoutMs) is spent:
 *  - success: this send committed;
 *  - compare failure: if the marker exists with "c", an earlier send committed (at the marker's create
 *    revision): reported as committed; otherwise it is a genuine conflict (the caller re-reads).
 * Because every send of one write compares the same marker as absent, at most one of them can commit.
 * The client itself (createEtcdClient) re-sends only what provably never reached etcd, so the first send
 * that reaches etcd is the only one nobody but EtcdIo knows of.
 *
 * A marker lives 90-180 s (see MARKER_TTL_S), far beyond any send's life. A duplicate arriving after its
 * marker expired (gRPC cancels a send at its deadline, so it should not happen) still cannot apply twice: every
 * flatnet txn compares the mod revision (or absence) of a key it also writes, and a committed write moved it.
 */
export class EtcdIo {
  private readonly markerPrefix: string;
  private readonly budgetMs: number;
  private readonly sendMs: number;
  private readonly lease: MarkerLease;
  private closed = false;

  constructor(
    private readonly etcd: Etcd3,
    private readonly logger: Logger,
    options: EtcdIoOptions = {},
  ) {
    const profile = etcdClientProfile(etcd);
    this.markerPrefix = `${(options.prefix ?? profile.prefix).replace(/\/+$/, '')}/txn/`;
    this.budgetMs = options.budgetMs ?? profile.timeoutMs;
    // Several sends fit in the budget, so a stalled connection or a lost leader costs one send, not the call.
    this.sendMs = Math.min(this.budgetMs, Math.max(500, Math.round(this.budgetMs / 3)));
    let lease = markerLeases.get(etcd);
    if (lease === undefined) {
      lease = new MarkerLease(etcd);
      markerLeases.set(etcd, lease);
    }
    this.lease = lease;
  }

  /**
   * The process is shutting down (its client closes next): a pending call gets one re-send more (a leader change
   * is ridden out) instead of re-sending until the budget is spent, which would hold up the exit by etcdTimeoutMs
   * while etcd is away.
   */
  close(): void {
    this.closed = true;
  }

  private unanswered(what: string, err: unknown, mayHaveApplied: boolean): FlatnetError {
    this.logger.warn({ err: errorMessage(err), what, may_have_applied: mayHaveApplied }, 'etcd did not answer');
    const seconds = (this.budgetMs / 1000).toFixed(1);
    return new FlatnetError(
      'unavailable',
      `etcd did not answer (${what}) within ${seconds} s: ${errorMessage(err)}; check that the etcd endpoints are reachable.` +
        (mayHaveApplied
          ? ' The change may have reached etcd; flatnet makes sure it never applies, or logs that it did.'
          : ''),
      { cause: err },
    );
  }

  private refused(what: string, err: unknown): FlatnetError {
    this.logger.warn({ err: errorMessage(err), what }, 'etcd refused a request');
    return new FlatnetError('unavailable', `etcd refused the request (${what}): ${errorMessage(err)}`, { cause: err });
  }

  /** Sends an idempotent request (a read) until etcd answers or the budget is spent. */
  private async resending<T>(what: string, send: (options: { deadline: Date }) => Promise<T>): Promise<T> {
    const end = Date.now() + this.budgetMs;
    let telling: unknown;
    for (let n = 0; ; n++) {
      try {
        return await send({ deadline: new Date(Math.min(end, Date.now() + this.sendMs)) });
      } catch (err) {
        if (!isTransient(err)) throw this.refused(what, err);
        telling = mostTelling(telling, err);
        const wait = pause(n);
        if ((this.closed && n > 0) || Date.now() + wait >= end) throw this.unanswered(what, telling, false);
        await sleep(wait);
      }
    }
  }

  /**
   * Reads several keys (and small key ranges [start, end)) at one revision: one round trip, or one per txn's worth
   * of keys (see txn-budget.ts), the later ones pinned to the first one's revision.
   */
  async read(keys: string[], ranges: { start: string; end: string }[] = []): Promise<Snapshot> {
    const wanted = [...keys.map((k) => ({ start: k, end: undefined })), ...ranges];
    const groups = splitByBudget(wanted, (r) => ({ compares: 0, writes: 1, bytes: opBytes(r.start, r.end) }));
    const kvs = new Map<string, Kv>();
    let revision: string | undefined;
    for (const group of groups.length > 0 ? groups : [[]]) {
      const at = revision;
      const ops: IRequestOp[] = group.map((r) => ({
        request_range: {
          key: b(r.start),
          ...(r.end === undefined ? {} : { range_end: b(r.end) }),
          ...(at === undefined ? {} : { revision: at }),
        },
      }));
      const res = await this.resending('read', (options) =>
        this.etcd.kv.txn({ compare: [], success: ops, failure: [] }, options),
      );
      revision ??= res.header.revision;
      for (const r of res.responses) {
        for (const kv of r.response_range?.kvs ?? []) {
          const key = kv.key.toString();
          kvs.set(key, { key, value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
        }
      }
    }
    return { revision: revision as string, kvs };
  }

  /** All keys in [start, end), optionally at a given revision, with the revision read. */
  async readRange(
    start: string,
    end: string,
    opts: { keysOnly?: boolean; countOnly?: boolean } = {},
  ): Promise<Snapshot & { count: number }> {
    const res = await this.resending('range read', (options) =>
      this.etcd.kv.range(
        { key: b(start), range_end: b(end), keys_only: opts.keysOnly ?? false, count_only: opts.countOnly ?? false },
        options,
      ),
    );
    const kvs = new Map<string, Kv>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      kvs.set(key, { key, value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
    }
    return { revision: res.header.revision, kvs, count: Number(res.count) };
  }

  /**
   * All keys in [start, end) like readRange, read in pages of `pageSize` keys (each page one range read, continued
   * just after the last key read), every page at the revision of the first: one consistent snapshot, and no reply
   * near gRPC's 4 MiB message cap however large the range (25k address records come close). A compaction of that
   * revision meanwhile starts the listing over (bounded).
   */
  async readPaged(start: string, end: string, pageSize: number): Promise<Snapshot> {
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new Error(`readPaged: page size ${pageSize}`);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readPagesOnce(start, end, pageSize);
      } catch (err) {
        const compacted =
          err instanceof FlatnetError && err.cause instanceof Error && /compacted/.test(err.cause.message);
        if (!compacted || attempt >= 2) throw err;
      }
    }
  }

  private async readPagesOnce(start: string, end: string, pageSize: number): Promise<Snapshot> {
    const kvs = new Map<string, Kv>();
    let from = b(start);
    let revision: string | undefined;
    for (;;) {
      const at = revision;
      const res = await this.resending('range read', (options) =>
        this.etcd.kv.range(
          { key: from, range_end: b(end), limit: pageSize, ...(at === undefined ? {} : { revision: at }) },
          options,
        ),
      );
      revision ??= res.header.revision;
      for (const kv of res.kvs) {
        const key = kv.key.toString();
        kvs.set(key, { key, value: kv.value, modRevision: kv.mod_revision, createRevision: kv.create_revision });
      }
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) return { revision, kvs };
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /**
   * The keys in [start, end) a page of `pageSize` at a time, each page one range read continued just after the last
   * key read. Pages are not one snapshot (a listing of hints, or of records checked again before any write): memory
   * holds one page, however large the range.
   */
  async *pages(start: string, end: string, pageSize: number): AsyncGenerator<Kv[]> {
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new Error(`pages: page size ${pageSize}`);
    let from = b(start);
    for (;;) {
      const key = from;
      const res = await this.resending('range read', (options) =>
        this.etcd.kv.range({ key, range_end: b(end), limit: pageSize }, options),
      );
      const page = res.kvs.map((kv) => ({
        key: kv.key.toString(),
        value: kv.value,
        modRevision: kv.mod_revision,
        createRevision: kv.create_revision,
      }));
      if (page.length > 0) yield page;
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) return;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /** One txn attempt: true when every expectation held and the writes happened. */
  async write(w: Write): Promise<boolean> {
    return (await this.writeAt(w)) !== undefined;
  }

  /**
   * One txn attempt: the revision the writes got, or undefined when an expectation failed. The attempt is
   * settled: re-sent on transport errors until etcd gives a definite answer (see the class comment).
   *
   * A write over etcd's txn limits is refused here, before any send (a caller bug: the repositories split their
   * writes by txn-budget.ts, and etcd would refuse it for good anyway).
   */
  async writeAt(w: Write): Promise<string | undefined> {
    const cost = writeCost(w);
    if (!fits(cost)) {
      throw new FlatnetError(
        'internal',
        `A write of ${cost.writes} operations, ${cost.compares} compares and ${cost.bytes} bytes is over etcd's txn limits (a flatnet bug).`,
      );
    }
    const marker = b(`${this.markerPrefix}${randomUUID()}`);
    const markerAbsent: ICompare = { key: marker, target: 'Create', result: 'Equal', create_revision: 0 };
    const compare: ICompare[] = w.expect.map((e) =>
      e.modRevision === undefined
        ? { key: b(e.key), target: 'Create', result: 'Equal', create_revision: 0 }
        : { key: b(e.key), target: 'Mod', result: 'Equal', mod_revision: e.modRevision },
    );
    for (const u of w.unchangedSince ?? []) {
      compare.push({
        key: b(u.start),
        range_end: b(u.end),
        target: 'Mod',
        result: 'Less',
        mod_revision: String(BigInt(u.revision) + 1n),
      });
    }
    compare.push(markerAbsent);
    const writes: IRequestOp[] = [
      ...w.puts.map((p) => ({
        request_put: { key: b(p.key), value: typeof p.value === 'string' ? b(p.value) : p.value },
      })),
      ...(w.deletes ?? []).map((k) => ({ request_delete_range: { key: b(k) } })),
      ...(w.deleteRanges ?? []).map((r) => ({ request_delete_range: { key: b(r.start), range_end: b(r.end) } })),
    ];
    const stop = etcdTxnSeconds.startTimer();
    const end = Date.now() + this.budgetMs;
    // Set once a send may have reached etcd without its answer reaching us.
    let unsure = false;
    let telling: unknown;
    try {
      for (let n = 0; ; n++) {
        const deadline = Math.min(end, Date.now() + this.sendMs);
        let lease: string | undefined;
        try {
          lease = await this.lease.id(deadline);
          const success = [...writes, { request_put: { key: marker, value: b(COMMITTED), lease } }];
          /*
           * After an unanswered send, a compare failure alone would not tell "an earlier send committed" from
           * "conflict, but an earlier send is still on its way and may commit later" (a send delayed in a
           * buffer, or a proposal etcd applies after our deadline). So these sends fence the marker in the
           * same txn: the failure branch puts "f" if the marker is absent, else reads it. Once this answer
           * says "conflict", the marker exists and no earlier send can ever commit. A first send needs no
           * fence: nothing else carries its marker.
           */
          const failure: IRequestOp[] = unsure
            ? [
                {
                  request_txn: {
                    compare: [markerAbsent],
                    success: [{ request_put: { key: marker, value: b(FENCED), lease } }],
                    failure: [{ request_range: { key: marker } }],
                  },
                },
              ]
            : [];
          const res = await this.etcd.kv.txn({ compare, success, failure }, { deadline: new Date(deadline) });
          return this.outcome(res);
        } catch (err) {
          if (lease !== undefined && err instanceof EtcdLeaseInvalidError) {
            // Rejected whole (nothing applied): send again with a fresh lease. A lease in use is at most 90 s
            // old, so it vanishes within one budget only if etcd lost it (restored from a backup); an earlier
            // send's commit would then have lost its marker too and would look like a conflict.
            this.lease.drop(lease);
          } else if (!isTransient(err)) {
            throw this.refused('txn', err);
          } else if (lease !== undefined && !isProvablyUnsent(err)) {
            unsure = true;
          }
          telling = mostTelling(telling, err);
          const wait = pause(n);
          if ((this.closed && n > 0) || Date.now() + wait >= end) {
            // The caller hears "failed"; make that true (or log that it is not) as soon as etcd is back.
            if (unsure && !this.closed) this.fenceLater(marker, w);
            throw this.unanswered('txn', telling, unsure);
          }
          await sleep(wait);
        }
      }
    } finally {
      stop();
    }
  }

  private outcome(res: ITxnResponse): string | undefined {
    if (res.succeeded) return res.header.revision;
    const fence = res.responses[0]?.response_txn;
    // No fence in the txn (first send) or the fence put "f" just now: a genuine conflict.
    if (fence === undefined || fence.succeeded) return undefined;
    const kv = fence.responses[0]?.response_range?.kvs[0];
    if (kv !== undefined && kv.value.toString() === COMMITTED) {
      this.logger.info({ revision: kv.create_revision }, 'an etcd txn whose answer was lost had committed');
      return kv.create_revision;
    }
    // "f": an earlier send of ours fenced the marker (its answer was lost too): a conflict.
    return undefined;
  }

  /**
   * After giving up on an unanswered write, keeps trying (in the background, for a minute) to fence its
   * marker: then the write can never apply, as its caller was told. If instead an earlier send had
   * committed, says so loudly, with the keys, for an operator to undo (e.g. `flatnet ip release`).
   */
  private fenceLater(marker: Buffer, w: Write): void {
    const keys = [...w.puts.map((p) => p.key), ...(w.deletes ?? [])].slice(0, 8);
    const end = Date.now() + FENCE_WINDOW_MS;
    void (async () => {
      for (let n = 0; Date.now() < end && !this.closed; n++) {
        try {
          const deadline = Date.now() + this.sendMs;
          const lease = await this.lease.id(deadline);
          const res = await this.etcd.kv.txn(
            {
              compare: [{ key: marker, target: 'Create', result: 'Equal', create_revision: 0 }],
              success: [{ request_put: { key: marker, value: b(FENCED), lease } }],
              failure: [{ request_range: { key: marker } }],
            },
            { deadline: new Date(deadline) },
          );
          const kv = res.responses[0]?.response_range?.kvs[0];
          if (!res.succeeded && kv?.value.toString() === COMMITTED) {
            this.logger.warn(
              { keys, revision: kv.create_revision },
              'a write reported to its caller as failed had been applied in etcd',
            );
          } else {
            this.logger.info({ keys }, 'a write reported as failed is now sure never to apply');
          }
          return;
        } catch (err) {
          if (!isTransient(err) && !(err instanceof EtcdLeaseInvalidError)) {
            this.logger.warn({ keys, err: errorMessage(err) }, 'could not learn whether a failed write was applied');
            return;
          }
          await sleep(Math.min(2000, 100 * 2 ** n), true);
        }
      }
      this.logger.warn({ keys }, 'could not learn whether a failed write was applied (etcd stayed away)');
    })();
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
