import { z } from 'zod';
import { errorMessage, FlatnetError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import { journalBacklog, journalLanded } from '../../observability/metrics.js';

/**
 * Releases that could not reach etcd, kept on disk until they land. Docker gets its answer at once (a release
 * cannot be refused anyway: the container is gone); the journal is replayed at start and periodically, in order.
 * Each entry is idempotent on replay: an address entry frees the address only if this host still holds it with
 * an assignment made before the release was asked for (a later assignment of the same address is left alone).
 */

const entrySchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('address'), poolId: z.string(), address: z.string(), at: z.string() }),
  // claimSince: the claim the release had chosen when etcd stopped answering (absent: it never read the pool).
  z.object({ op: z.literal('pool'), poolId: z.string(), at: z.string(), claimSince: z.string().optional() }),
]);
const journalSchema = z.object({ entries: z.array(entrySchema) });

export type JournalEntry = z.infer<typeof entrySchema>;

/** Where the journal lives (a file in the state dir in production, see util/atomic-file.ts). */
export interface JournalStorage {
  load(): Promise<string | undefined>;
  /** Replaces the stored journal atomically. */
  save(text: string): Promise<void>;
}

/** Appends, dropping the oldest entries past `max` (the reconcile still finds what they would have freed). */
export function appendBounded(
  entries: readonly JournalEntry[],
  entry: JournalEntry,
  max: number,
): { entries: JournalEntry[]; dropped: JournalEntry[] } {
  const all = [...entries, entry];
  const over = Math.max(0, all.length - max);
  return { entries: all.slice(over), dropped: all.slice(0, over) };
}

export interface DrainResult {
  landed: number;
  /** Entries refused for good (bad pool id...): dropped, logged. */
  discarded: number;
  left: number;
}

export class ReleaseJournal {
  private entries: JournalEntry[] = [];
  private loaded = false;
  /** One load/append/drain at a time: the file is rewritten whole. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly storage: JournalStorage,
    private readonly logger: Logger,
    private readonly maxEntries = 10_000,
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async ensureLoaded(): Promise<void> {
    if (this.loaded) return;
    const text = await this.storage.load();
    if (text !== undefined) {
      let parsed: z.ZodSafeParseResult<z.infer<typeof journalSchema>> | undefined;
      try {
        parsed = journalSchema.safeParse(JSON.parse(text));
      } catch {
        parsed = undefined;
      }
      if (parsed?.success) this.entries = parsed.data.entries;
      // A damaged journal is not fatal: the periodic reconcile frees what its entries would have.
      else this.logger.error('the release journal is damaged; starting a new one (reconcile frees what it held)');
    }
    this.loaded = true;
    journalBacklog.set(this.entries.length);
  }

  /** Stores `entries`, and only then takes them as the journal (a failed write changes nothing). */
  private async replace(entries: JournalEntry[]): Promise<void> {
    await this.storage.save(`${JSON.stringify({ entries })}\n`);
    this.entries = entries;
    journalBacklog.set(entries.length);
  }

  add(entry: JournalEntry): Promise<void> {
    return this.serial(async () => {
      await this.ensureLoaded();
      const next = appendBounded(this.entries, entry, this.maxEntries);
      await this.replace(next.entries);
      for (const d of next.dropped) this.logger.error({ entry: d }, 'release journal full: oldest entry dropped');
    });
  }

  /** Drops the first entry equal to `entry` (its release landed). */
  remove(entry: JournalEntry): Promise<void> {
    return this.serial(async () => {
      await this.ensureLoaded();
      const i = this.entries.findIndex((e) => sameEntry(e, entry));
      if (i < 0) return;
      await this.replace([...this.entries.slice(0, i), ...this.entries.slice(i + 1)]);
    });
  }

  has(entry: JournalEntry): Promise<boolean> {
    return this.serial(async () => {
      await this.ensureLoaded();
      return this.entries.some((e) => sameEntry(e, entry));
    });
  }

  pending(): Promise<JournalEntry[]> {
    return this.serial(async () => {
      await this.ensureLoaded();
      return [...this.entries];
    });
  }

  /**
   * Applies the entries present when it starts, in order, removing each that lands; stops at the first that
   * cannot reach etcd (the rest would fail alike, and order matters: an address before its pool). Entries `skip`
   * names (a release landing right now by other means) stay, untouched. The journal is not held while an entry
   * is applied: adding an entry (every ReleaseAddress) never waits for etcd. One drain at a time (the heal loop's).
   */
  async drain(
    apply: (entry: JournalEntry) => Promise<void>,
    skip: (entry: JournalEntry) => boolean = () => false,
  ): Promise<DrainResult> {
    const todo = await this.pending();
    let landed = 0;
    let discarded = 0;
    for (const entry of todo) {
      // Gone since the drain began (its release landed by other means) or landing right now: not applied again.
      if (!(await this.has(entry)) || skip(entry)) continue;
      try {
        await apply(entry);
        landed++;
        journalLanded.inc();
      } catch (err) {
        if (err instanceof FlatnetError && err.kind === 'unavailable') break;
        discarded++;
        this.logger.error({ entry, error: errorMessage(err) }, 'journaled release refused; dropped');
      }
      await this.remove(entry);
    }
    const left = (await this.pending()).length;
    if (landed > 0) this.logger.info({ landed, left }, 'journaled releases landed');
    return { landed, discarded, left };
  }
}

function sameEntry(a: JournalEntry, b: JournalEntry): boolean {
  return (
    a.op === b.op &&
    a.poolId === b.poolId &&
    a.at === b.at &&
    (a.op === 'pool' || (b.op === 'address' && a.address === b.address))
  );
}

export function isUnavailable(err: unknown): boolean {
  return err instanceof FlatnetError && err.kind === 'unavailable';
}
