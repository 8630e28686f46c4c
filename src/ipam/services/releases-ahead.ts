import { errorMessage } from '../../errors.js';
import { addressAt, subnetContains, tryParseAddress } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { parsePoolId, type PoolRef } from '../core/pool-id.js';
import { type DrainResult, isUnavailable, type JournalEntry, type ReleaseJournal } from './release-journal.js';

/** The etcd write of one container release (the driver's group commit). */
export type CommitRelease = (ref: PoolRef, poolId: string, offset: bigint) => Promise<void>;

export interface ReleasesAheadOptions {
  /** Where releases that cannot reach etcd wait (none: they fail back to the caller). */
  journal?: ReleaseJournal;
  /**
   * With a journal: a release answers once its journal entry is written, and its etcd write runs after the
   * reply (Docker waits for the release before `docker rm` returns, and a release cannot be refused anyway:
   * the container is gone). Default false: the release answers after its write.
   */
  answerFirst?: boolean;
}

/**
 * Releases answered before their etcd write lands, and the journal that keeps them across etcd outages and
 * restarts. It knows which releases are still landing, per pool and address, so that a request that could want
 * an address back, a pool release and the journal's replay wait for them or leave them alone.
 */
export class ReleasesAhead {
  private readonly journal: ReleaseJournal | undefined;
  private readonly answerFirst: boolean;
  /** Landings under way per pool, then per canonical address; one per address at a time, chained in order. */
  private readonly landing = new Map<string, Map<string, Promise<void>>>();

  constructor(
    private readonly commit: CommitRelease,
    private readonly logger: Logger,
    options: ReleasesAheadOptions = {},
  ) {
    this.journal = options.journal;
    this.answerFirst = options.answerFirst === true && options.journal !== undefined;
  }

  /**
   * Frees the address at `offset`, or journals the release when etcd cannot be reached. With answerFirst, the
   * journal entry comes first and the write after the answer; the entry goes once the write landed, and stays for
   * the journal's replay when it could not (etcd away, or this process killed meanwhile).
   */
  async release(entry: JournalEntry & { op: 'address' }, ref: PoolRef, offset: bigint): Promise<void> {
    const journal = this.journal;
    if (this.answerFirst && journal !== undefined) {
      const added = journal.add(entry).then(
        () => true,
        (err: unknown) => {
          this.logger.warn(
            { entry, error: errorMessage(err) },
            'could not journal a release; releasing before the reply',
          );
          return false;
        },
      );
      // Registered before the entry is written, so that no journal replay takes it for a forgotten one.
      this.track(entry.poolId, entry.address, (before) => this.land(entry, ref, offset, journal, added, before));
      if (await added) return;
    }
    // Without a journal or a written entry, the write comes before the answer.
    try {
      await this.commit(ref, entry.poolId, offset);
    } catch (err) {
      await this.journalIfUnavailable(entry, err);
    }
  }

  /**
   * Journals a release whose write failed because etcd is away, and returns; any other failure, or a journal that
   * cannot be written, throws `cause`.
   */
  async journalIfUnavailable(entry: JournalEntry, cause: unknown): Promise<void> {
    if (this.journal === undefined || !isUnavailable(cause)) throw cause;
    try {
      await this.journal.add(entry);
    } catch (err) {
      this.logger.error({ entry, error: errorMessage(err) }, 'could not journal a release');
      throw cause;
    }
    this.logger.warn(
      { entry, error: errorMessage(cause) },
      'etcd unreachable: release journaled, retried in the background',
    );
  }

  /** Waits for the pool's releases still landing (of one address, when given); never throws. */
  async landed(poolId: string, address?: string): Promise<void> {
    const byAddress = this.landing.get(poolId);
    if (byAddress === undefined) return;
    if (address === undefined) {
      await Promise.all(byAddress.values());
      return;
    }
    // Keys are canonical addresses (an IPv6 address may come written another way).
    const ref = parsePoolId(poolId);
    const parsed = tryParseAddress(address);
    if (parsed === undefined || !subnetContains(ref.subnet, parsed.family, parsed.value)) return;
    await byAddress.get(addressAt(ref.subnet, parsed.value - ref.subnet.network));
  }

  /** Pools with a release answered and still landing. */
  pools(): string[] {
    return [...this.landing.keys()];
  }

  /** Waits for every release answered and still landing (shutdown); one that cannot reach etcd stays journaled. */
  async settle(): Promise<void> {
    while (this.landing.size > 0) await Promise.all([...this.landing.values()].flatMap((m) => [...m.values()]));
  }

  /** Replays the journal with `apply`, leaving the entries whose release is landing right now to that landing. */
  drain(apply: (entry: JournalEntry) => Promise<void>): Promise<DrainResult> | undefined {
    return this.journal?.drain(apply, (e) => this.isLanding(e));
  }

  private isLanding(entry: JournalEntry): boolean {
    return entry.op === 'address' && this.landing.get(entry.poolId)?.has(entry.address) === true;
  }

  /**
   * The write of a release already answered. A request waiting for it resumes once the write landed; the journal
   * entry goes after that. Any failure keeps the entry for the journal's replay.
   */
  private async land(
    entry: JournalEntry & { op: 'address' },
    ref: PoolRef,
    offset: bigint,
    journal: ReleaseJournal,
    added: Promise<boolean>,
    before: Promise<void> | undefined,
  ): Promise<void> {
    if (!(await added)) return;
    await before;
    try {
      await this.commit(ref, entry.poolId, offset);
    } catch (err) {
      this.logger.warn(
        { entry, error: errorMessage(err) },
        isUnavailable(err)
          ? 'etcd unreachable: release journaled, retried in the background'
          : 'release failed after its reply; kept in the journal for its replay',
      );
      return;
    }
    void journal
      .remove(entry)
      .catch((err: unknown) =>
        this.logger.warn(
          { entry, error: errorMessage(err) },
          'could not drop a landed release from the journal (its replay changes nothing)',
        ),
      );
  }

  /** Runs one landing per address at a time, in order, and keeps it findable until it is done. */
  private track(poolId: string, address: string, run: (before: Promise<void> | undefined) => Promise<void>): void {
    const byAddress = this.landing.get(poolId) ?? new Map<string, Promise<void>>();
    this.landing.set(poolId, byAddress);
    const landing = run(byAddress.get(address));
    byAddress.set(address, landing);
    void landing.finally(() => {
      if (byAddress.get(address) === landing) byAddress.delete(address);
      if (byAddress.size === 0 && this.landing.get(poolId) === byAddress) this.landing.delete(poolId);
    });
  }
}
