import { createHash } from 'node:crypto';
import { poolExhausted, poolNotFound } from '../../errors.js';
import { addressAt, formatSubnet, offsetIn } from '../../net/address.js';
import { type Interval, nthMember } from '../../net/intervals.js';
import type { Logger } from '../../observability/logger.js';
import { bitOf, blockFull, blockOf, freeOffsets, getBit, withBit } from '../core/bitmap.js';
import {
  assignOffset,
  autoAssign,
  type BlockEdit,
  type BlockState,
  occupiedOf,
  type OpsBudget,
  summaryEdit,
} from '../core/block-ops.js';
import { findOpenBlock, scanForOpenBlock } from '../core/block-search.js';
import { occupied, oldestCooled } from '../core/cooling-rules.js';
import type { PoolRef } from '../core/pool-id.js';
import { allocatable, allowedFor } from '../core/pool-rules.js';
import { stickyReuse } from '../core/sticky.js';
import type { Bitmap } from '../model/block.js';
import { type Cooling, type CoolingPolicy, NO_COOLING } from '../model/cooling-record.js';
import type { Assignment } from '../model/records.js';
import type { BlockCommit, BlockRepository, BlockSnapshot, ConflictRetry } from '../ports.js';

export type AssignmentMeta = Pick<Assignment, 'macAddress' | 'endpointName'>;

/** When released addresses may be handed out again, and the clock that judges it (epoch seconds). */
export interface CoolingOptions {
  policy: CoolingPolicy;
  now: () => number;
}

export const COOLING_OFF: CoolingOptions = { policy: NO_COOLING, now: () => Math.floor(Date.now() / 1000) };

/** The block as the pure operations see it. */
export function blockState(s: BlockSnapshot, cooling: CoolingOptions = COOLING_OFF): BlockState {
  return {
    block: s.block,
    hostBits: s.subnet.hostBits,
    bits: s.bits,
    nodes: s.nodes.map((n) => n.bits),
    cooling: s.cooling,
    now: cooling.now(),
    policy: cooling.policy,
  };
}

/** What a block edit writes: bits, summaries, cooling entries, and the released records that go. */
export function editCommit(ref: PoolRef, edit: BlockEdit): BlockCommit & { dropReleased: string[] } {
  return {
    bits: edit.bits,
    nodes: edit.nodes,
    cooling: edit.cooling,
    dropReleased: edit.dropReleased.map((o) => addressAt(ref.subnet, o)),
  };
}

/** What one allocation commit may spend on its addresses: the store's capacity (etcd's limits), per name. */
function budgetFor(blocks: BlockRepository, ref: PoolRef, metas: AssignmentMeta[]): OpsBudget {
  return blocks.capacity(ref.subnet).creations(metas.map((m) => (m.endpointName ?? '') !== ''));
}

/**
 * Chooses and commits container addresses: read (or take the cached block) → autoAssign → compare-and-swap →
 * retry. Keeps, per pool, the block it last allocated from; the repository keeps that block as this process
 * wrote it, so the steady state is one commit (plus a read after another host's write), whatever the pool's size
 * and fill. Each host starts at a block picked from a hash of its id, which spreads hosts over the pool.
 * Cooling addresses are skipped like assigned ones (the summary tree counts them as taken), so their number
 * costs nothing per allocation; only when nothing else is left does the exhaustion scan reuse the oldest.
 */
export class AllocationService {
  private readonly cursors = new Map<string, bigint>();

  constructor(
    private readonly blocks: BlockRepository,
    private readonly retry: ConflictRetry,
    private readonly hostId: string,
    private readonly cooling: CoolingOptions = COOLING_OFF,
    private readonly random: () => number = Math.random,
    private readonly logger?: Logger,
  ) {}

  /** Allocates up to metas.length addresses from one block in one commit; returns the addresses (at least one). */
  async allocate(ref: PoolRef, poolId: string, metas: AssignmentMeta[]): Promise<string[]> {
    const tried = new Set<bigint>();
    return this.retry.retrying('allocate an address', () => this.allocateOnce(ref, poolId, metas, tried));
  }

  /**
   * The block read with the pool's config: the one read every allocation path starts from. `addresses`: the
   * records to read along (see BlockRepository.read).
   */
  private async read(ref: PoolRef, poolId: string, block: bigint, addresses?: string[]): Promise<BlockSnapshot> {
    const view = await this.blocks.read(ref.subnet, block, addresses);
    if (!view) throw poolNotFound(poolId);
    return view;
  }

  /**
   * Commits the block edit the rules decided with this host's assignments of `offsets` (one per meta) and their
   * name hints, compared against `view`: the addresses, or undefined when another writer got there first.
   */
  private async commitAssignments(
    view: BlockSnapshot,
    ref: PoolRef,
    poolId: string,
    edit: BlockEdit,
    offsets: bigint[],
    metas: AssignmentMeta[],
  ): Promise<string[] | undefined> {
    const since = new Date().toISOString();
    const create = offsets.map((o, i) => ({
      address: addressAt(ref.subnet, o),
      assignment: { hostId: this.hostId, since, poolId, ...definedOnly(metas[i]) },
    }));
    const written = await this.blocks.commit(view, { ...editCommit(ref, edit), create, names: namesOf(create) });
    return written === undefined ? undefined : create.map((c) => c.address);
  }

  private async allocateOnce(
    ref: PoolRef,
    poolId: string,
    metas: AssignmentMeta[],
    tried: Set<bigint>,
  ): Promise<string[] | undefined> {
    const poolKey = formatSubnet(ref.subnet);
    for (;;) {
      let block = this.cursors.get(poolKey);
      if (block === undefined) {
        block = await this.startBlock(ref, poolId);
        this.cursors.set(poolKey, block);
      }
      const cached = this.blocks.takeCached(ref.subnet, block);
      const view = cached ?? (await this.read(ref, poolId, block));
      const { all, allowed } = rulesOf(view, ref);
      const { offsets, edit } = autoAssign(
        blockState(view, this.cooling),
        metas.length,
        allowed,
        all,
        budgetFor(this.blocks, ref, metas),
      );
      if (!edit) {
        tried.add(block);
        const next = await this.nextBlock(view, ref, allowed, all, tried);
        if (next === undefined) return this.reuseOldestCooled(ref, poolId, allowed, metas[0]);
        this.cursors.set(poolKey, next);
        continue;
      }
      const written = await this.commitAssignments(view, ref, poolId, edit, offsets, metas);
      if (written === undefined) {
        // A stale cached view is not contention: re-read at once instead of backing off.
        if (view === cached) continue;
        const settled = await this.settleDisagreement(
          view,
          ref,
          poolId,
          all,
          offsets.map((o) => addressAt(ref.subnet, o)),
        );
        if (settled === 'repaired') continue;
        if (settled === 'none') await this.moveAwayFrom(view, ref, allowed);
        return undefined;
      }
      return written;
    }
  }

  /**
   * The next free addresses this host's allocator would hand out for the pool, in order: the lowest free offsets of
   * its current block, then of the block after it (where the search looks first when the block fills). Read only:
   * a fresh read, the cursor and the cached views stay as they are. For the conflict probe, never on a call's path.
   */
  async upcoming(ref: PoolRef, poolId: string, n: number): Promise<string[]> {
    let block = this.cursors.get(formatSubnet(ref.subnet)) ?? (await this.startBlock(ref, poolId));
    const out: string[] = [];
    for (let i = 0; i < 2 && out.length < n; i++, block++) {
      const view = await this.read(ref, poolId, block);
      const free = freeOffsets(
        occupiedOf(blockState(view, this.cooling)),
        block,
        rulesOf(view, ref).allowed,
        n - out.length,
      );
      out.push(...free.map((o) => addressAt(ref.subnet, o)));
    }
    return out;
  }

  /**
   * Nothing is free but cooling addresses: the one that cooled longest (plain cooling before parked for a name)
   * is handed out rather than failing. Reads every block's cooling entries, at exhaustion only.
   */
  private async reuseOldestCooled(
    ref: PoolRef,
    poolId: string,
    allowed: Interval[],
    meta: AssignmentMeta | undefined,
  ): Promise<string[] | undefined> {
    const bits = await this.blocks.readAll(ref.subnet);
    const cooling = await this.blocks.readCooling(ref.subnet);
    const merged = new Map<bigint, { bits: Bitmap; cooling: Cooling }>();
    for (const [block, c] of cooling) merged.set(block, { bits: bits.get(block) ?? new Uint8Array(32), cooling: c });
    const pick = oldestCooled(merged, allowed);
    if (!pick) throw poolExhausted(poolId);
    const address = addressAt(ref.subnet, pick.offset);
    const view = await this.read(ref, poolId, pick.block, [address]);
    const { all, allowed: allowedNow } = rulesOf(view, ref);
    const decided = assignOffset(blockState(view, this.cooling), pick.offset, allowedNow, all);
    // Taken or no longer allowed since the scan: another attempt rescans.
    if (decided.outcome !== 'assigned') return undefined;
    const written = await this.commitAssignments(view, ref, poolId, decided.edit, [pick.offset], [meta ?? {}]);
    if (written === undefined) return undefined;
    this.cursors.set(formatSubnet(ref.subnet), pick.block);
    return written;
  }

  /**
   * Docker 29+ names the container: the address parked for that name comes back when it is still parked (released
   * by that name, not reused since). undefined = nothing to give back (then a fresh address is chosen); a name
   * that holds its address (two containers of one name) gets nothing back here either.
   */
  async reclaimForName(
    ref: PoolRef,
    poolId: string,
    meta: AssignmentMeta & { endpointName: string },
  ): Promise<string | undefined> {
    if (this.cooling.policy.stickySec <= 0) return undefined;
    const hinted = await this.blocks.readName(ref.subnet, meta.endpointName);
    if (hinted === undefined) return undefined;
    let offset: bigint;
    try {
      offset = offsetIn(ref.subnet, hinted);
    } catch {
      return undefined;
    }
    const address = addressAt(ref.subnet, offset);
    return this.retry
      .retrying(`give ${address} back to ${meta.endpointName}`, async () => {
        const view = await this.read(ref, poolId, blockOf(offset), [address]);
        const state = blockState(view, this.cooling);
        const entry = view.cooling.get(Number(offset & 255n));
        const verdict = stickyReuse(
          meta.endpointName,
          { assigned: view.assignments.get(address), released: view.released.get(address), entry },
          state.now ?? 0,
          this.cooling.policy,
        );
        if (verdict !== 'give-back') return { address: undefined };
        const { all, allowed } = rulesOf(view, ref);
        const decided = assignOffset(state, offset, allowed, all);
        if (decided.outcome !== 'assigned') return { address: undefined };
        const written = await this.commitAssignments(view, ref, poolId, decided.edit, [offset], [meta]);
        return written === undefined ? undefined : { address };
      })
      .then((r) => r.address);
  }

  /**
   * A fresh view's commit failed: was it another writer, or does the block disagree with its records? Every
   * flatnet writer changes a block's bits and its addr keys in one txn, so a consistent read (one revision) that
   * shows an addr record for an offset the bits call free is damage, not a race (a hand edit, a restore from an old
   * backup, a bug): the allocation would pick that offset and fail its "record absent" compare on every attempt.
   *
   * The record is treated as the truth and the bit is set (logged once per address), rather than the offset being
   * skipped: the record names a holder, and handing its address out again could put two containers on one address,
   * the one failure flatnet must never have. Setting the bit also makes the block agree for every host (skipping
   * would help only this process, and each of the others would pay a failed commit and a read for it), and the
   * address is then freed by the ordinary paths when its holder is gone (ReleaseAddress, the holder host's
   * reconcile, `flatnet ip release`); `flatnet fsck --repair` makes the same repair, it is just not needed for
   * progress. 'none' = no disagreement (a lost race); 'conflict' = the repair itself lost a race (retry).
   */
  private async settleDisagreement(
    view: BlockSnapshot,
    ref: PoolRef,
    poolId: string,
    all: Interval[],
    addresses: string[],
  ): Promise<'none' | 'repaired' | 'conflict'> {
    const now = await this.blocks.read(ref.subnet, view.block, addresses);
    if (!now) throw poolNotFound(poolId);
    const stray = addresses.filter((a) => now.assignments.has(a) && !getBit(now.bits, bitOf(offsetIn(ref.subnet, a))));
    if (stray.length === 0) return 'none';
    let bits = now.bits;
    const cooling = new Map(now.cooling);
    for (const a of stray) {
      const bit = bitOf(offsetIn(ref.subnet, a));
      bits = withBit(bits, bit, true);
      cooling.delete(bit);
    }
    const state = blockState(now, this.cooling);
    const ok = await this.blocks.commit(now, editCommit(ref, summaryEdit(state, bits, all, cooling)));
    if (!ok) return 'conflict';
    for (const address of stray) {
      this.logger?.warn(
        { address, pool: poolId },
        'an address record existed for an address its block called free: the block now marks it used (flatnet fsck lists such damage)',
      );
    }
    return 'repaired';
  }

  /**
   * Lost the race for a block to another host: the next attempt goes to another open block, picked at random.
   * Staying would starve this host: the winner commits its next batch from its cached block without a read, so
   * it is always quicker than the loser's read-then-commit, and both hosts would walk the pool in step, one of
   * them failing after the bounded retries (seen with two busy hosts that met in a block). With no other open
   * block, both stay and the backoff decides.
   */
  private async moveAwayFrom(view: BlockSnapshot, ref: PoolRef, allowed: Interval[]): Promise<void> {
    const from = nthMember(allowed, BigInt(Math.floor(this.random() * Number.MAX_SAFE_INTEGER)));
    if (from === undefined) return;
    const other = await findOpenBlock(
      ref.subnet.hostBits,
      allowed,
      blockOf(from),
      (n) => this.blocks.readNode(ref.subnet, n),
      (b) => b === view.block,
    );
    if (other !== undefined) this.cursors.set(formatSubnet(ref.subnet), other);
  }

  private async startBlock(ref: PoolRef, poolId: string): Promise<bigint> {
    const view = await this.blocks.read(ref.subnet, 0n);
    if (!view) throw poolNotFound(poolId);
    const allowed = allowedFor(view.config, ref);
    const seed = BigInt(`0x${createHash('sha256').update(this.hostId).digest('hex').slice(0, 16)}`);
    const start = nthMember(allowed, seed);
    return start === undefined ? 0n : blockOf(start);
  }

  private async nextBlock(
    view: BlockSnapshot,
    ref: PoolRef,
    allowed: Interval[],
    all: Interval[],
    tried: Set<bigint>,
  ): Promise<bigint | undefined> {
    if (allowed.length === 0) return undefined;
    const state = blockState(view, this.cooling);
    // The block we just read may be full against a stale hint: fix the hint for the next searcher.
    if (blockFull(occupiedOf(state), view.block, all)) {
      await this.blocks.writeHints(view, summaryEdit(state, view.bits, all).nodes).catch(() => undefined);
    }
    const skip = (b: bigint): boolean => tried.has(b);
    const hinted = await findOpenBlock(
      ref.subnet.hostBits,
      allowed,
      view.block + 1n,
      (n) => this.blocks.readNode(ref.subnet, n),
      skip,
    );
    if (hinted !== undefined) return hinted;
    // The exact answer: cooling offsets count as taken, and a cooldown may have run out since a hint was written.
    const bits = await this.blocks.readAll(ref.subnet);
    const cooling = await this.blocks.readCooling(ref.subnet);
    const now = this.cooling.now();
    for (const [block, c] of cooling)
      bits.set(block, occupied(bits.get(block) ?? new Uint8Array(32), c, now, this.cooling.policy));
    return scanForOpenBlock(bits, allowed, skip);
  }
}

/** The pool's rules over a block read: every allocatable address, and those `ref` may hand out. */
function rulesOf(view: BlockSnapshot, ref: PoolRef): { all: Interval[]; allowed: Interval[] } {
  const all = allocatable(view.config, ref.subnet);
  return { all, allowed: allowedFor(view.config, ref, all) };
}

/** Name index entries for the named assignments of a commit. */
export function namesOf(create: { address: string; assignment: Assignment }[]): { name: string; address: string }[] {
  return create.flatMap((c) =>
    c.assignment.endpointName ? [{ name: c.assignment.endpointName, address: c.address }] : [],
  );
}

function definedOnly(m: AssignmentMeta | undefined): AssignmentMeta {
  const out: AssignmentMeta = {};
  if (m?.macAddress) out.macAddress = m.macAddress;
  if (m?.endpointName) out.endpointName = m.endpointName;
  return out;
}
