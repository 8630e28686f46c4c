import { createHash } from 'node:crypto';
import { FlatnetError } from '../errors.js';
import type { BlockStore, BlockView } from '../store/block-store.js';
import { addressAt, formatSubnet } from './address.js';
import { blockFull, blockOf, freeOffsets, withBit, bitOf } from './bitmap.js';
import { findOpenBlock, scanForOpenBlock } from './block-search.js';
import { nthMember } from './intervals.js';
import type { Assignment } from './pool-config.js';
import type { PoolRef } from './pool-id.js';
import { allocatable, allowedFor } from './pool-rules.js';

export type AssignmentMeta = Pick<Assignment, 'macAddress' | 'endpointName'>;

/** One allocation run's hold on the block it writes (see Allocator.allocate). */
interface BlockLock {
  isBusy(block: bigint): boolean;
  /** Releases what the run held and takes `block`; false when another run holds it. */
  claim(block: bigint): boolean;
  release(): void;
  waitFor(block: bigint): Promise<void>;
}

/**
 * Chooses and commits container addresses. Keeps, per pool and lane, the block it last allocated from and that
 * block as it wrote it, so the steady state is one txn (plus a read after another host's write), whatever the
 * pool's size and fill.
 * Each host starts at a block picked from a hash of its id, which spreads hosts over the pool.
 */
export class Allocator {
  private readonly cursors = new Map<string, bigint>();
  /** Blocks a run of this process is writing now, with when it is done: another lane goes elsewhere or waits. */
  private readonly busy = new Map<string, Promise<void>>();

  constructor(
    private readonly store: BlockStore,
    private readonly hostId: string,
  ) {}

  /**
   * Allocates up to metas.length addresses from one block in one txn; returns the addresses (at least one).
   * Runs of different lanes may overlap: each lane has its own cursor, and a block busy in one lane is skipped
   * by the others, so that two txns in flight never compete for one block.
   */
  async allocate(ref: PoolRef, poolId: string, metas: AssignmentMeta[], lane = 0): Promise<string[]> {
    const subnetKey = formatSubnet(ref.subnet);
    const tried = new Set<bigint>();
    let done: (() => void) | undefined;
    let held: string | undefined;
    const lock: BlockLock = {
      isBusy: (b) => this.busy.has(`${subnetKey}:${b}`),
      claim: (b) => {
        lock.release();
        const key = `${subnetKey}:${b}`;
        if (this.busy.has(key)) return false;
        this.busy.set(key, new Promise<void>((resolve) => (done = resolve)));
        held = key;
        return true;
      },
      release: () => {
        if (held !== undefined) this.busy.delete(held);
        done?.();
        held = undefined;
        done = undefined;
      },
      waitFor: async (b) => {
        await this.busy.get(`${subnetKey}:${b}`);
      },
    };
    try {
      return await this.store.io.retrying('allocate an address', () =>
        this.allocateOnce(ref, poolId, metas, lane, `${subnetKey}#${lane}`, tried, lock),
      );
    } finally {
      lock.release();
    }
  }

  private async allocateOnce(
    ref: PoolRef,
    poolId: string,
    metas: AssignmentMeta[],
    lane: number,
    poolKey: string,
    tried: Set<bigint>,
    lock: BlockLock,
  ): Promise<string[] | undefined> {
      for (;;) {
        let block = this.cursors.get(poolKey);
        if (block === undefined) {
          block = await this.startBlock(ref, lane);
          this.cursors.set(poolKey, block);
        }
        if (!lock.claim(block)) {
          // Another lane is writing this block: move this lane's cursor on, or wait when no other has room.
          const next = await this.nextBlockAfter(ref, block, (b) => tried.has(b) || lock.isBusy(b));
          if (next === undefined) await lock.waitFor(block);
          else this.cursors.set(poolKey, next);
          continue;
        }
        const cached = this.store.takeCached(ref.subnet, block);
        const view = cached ?? (await this.store.readBlock(ref.subnet, block));
        if (!view) throw new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
        const allowed = allowedFor(view.pool.config, ref);
        const all = allocatable(view.pool.config, ref.subnet);
        const offsets = freeOffsets(view.bits, block, allowed, metas.length);
        if (offsets.length === 0) {
          tried.add(block);
          const next = await this.nextBlock(view, ref, allowed, all, tried);
          if (next === undefined) {
            throw new FlatnetError('exhausted', `Pool ${poolId} is exhausted: no free address is left in its ranges; add one with \`flatnet ip-range add\` or release addresses.`);
          }
          this.cursors.set(poolKey, next);
          continue;
        }
        let bits = view.bits;
        for (const o of offsets) bits = withBit(bits, bitOf(o), true);
        const since = new Date().toISOString();
        const create = offsets.map((o, i) => ({
          address: addressAt(ref.subnet, o),
          assignment: { hostId: this.hostId, since, poolId, ...definedOnly(metas[i]) },
        }));
        const written = await this.store.commit(view, { bits, allocatable: all, create });
        if (written === undefined) {
          // A stale cached view is not contention: re-read at once instead of backing off.
          if (view === cached) continue;
          return undefined;
        }
        return create.map((c) => c.address);
      }
  }

  /** The next block with room after `block`, by the summary hints; undefined when none is known. */
  private async nextBlockAfter(ref: PoolRef, block: bigint, skip: (b: bigint) => boolean): Promise<bigint | undefined> {
    const view = await this.store.readBlock(ref.subnet, 0n);
    if (!view) return undefined;
    const allowed = allowedFor(view.pool.config, ref);
    return findOpenBlock(ref.subnet.hostBits, allowed, block + 1n, (n) => this.store.readNode(ref.subnet, n), skip);
  }

  private async startBlock(ref: PoolRef, lane: number): Promise<bigint> {
    const view = await this.store.readBlock(ref.subnet, 0n);
    if (!view) throw new FlatnetError('not-found', `Pool ${formatSubnet(ref.subnet)} does not exist (was its network removed?).`);
    const allowed = allowedFor(view.pool.config, ref);
    const seed = BigInt(`0x${createHash('sha256').update(`${this.hostId}#${lane}`).digest('hex').slice(0, 16)}`);
    const start = nthMember(allowed, seed);
    return start === undefined ? 0n : blockOf(start);
  }

  private async nextBlock(view: BlockView, ref: PoolRef, allowed: ReturnType<typeof allowedFor>, all: ReturnType<typeof allocatable>, tried: Set<bigint>): Promise<bigint | undefined> {
    if (allowed.length === 0) return undefined;
    // The block we just read may be full against a stale hint: fix the hint for the next searcher.
    if (blockFull(view.bits, view.block, all)) await this.store.repairHints(view, all).catch(() => undefined);
    const skip = (b: bigint): boolean => tried.has(b);
    const hinted = await findOpenBlock(ref.subnet.hostBits, allowed, view.block + 1n, (n) => this.store.readNode(ref.subnet, n), skip);
    if (hinted !== undefined) return hinted;
    const { blocks } = await this.store.readAllBlocks(ref.subnet);
    return scanForOpenBlock(blocks, allowed, skip);
  }
}

function definedOnly(m: AssignmentMeta | undefined): AssignmentMeta {
  const out: AssignmentMeta = {};
  if (m?.macAddress) out.macAddress = m.macAddress;
  if (m?.endpointName) out.endpointName = m.endpointName;
  return out;
}
