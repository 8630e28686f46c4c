import { createHash } from 'node:crypto';
import { poolExhausted, poolNotFound } from '../../errors.js';
import { addressAt, formatSubnet } from '../../net/address.js';
import { type Interval, nthMember } from '../../net/intervals.js';
import { blockFull, blockOf } from '../core/bitmap.js';
import { autoAssign, type BlockState, summaryEdit } from '../core/block-ops.js';
import { findOpenBlock, scanForOpenBlock } from '../core/block-search.js';
import type { PoolRef } from '../core/pool-id.js';
import { allocatable, allowedFor } from '../core/pool-rules.js';
import type { Assignment } from '../model/records.js';
import type { BlockRepository, BlockSnapshot, ConflictRetry } from '../ports.js';

export type AssignmentMeta = Pick<Assignment, 'macAddress' | 'endpointName'>;

/** The block as the pure operations see it. */
export function blockState(s: BlockSnapshot): BlockState {
  return { block: s.block, hostBits: s.subnet.hostBits, bits: s.bits, nodes: s.nodes.map((n) => n.bits) };
}

/**
 * Chooses and commits container addresses: read (or take the cached block) → autoAssign → compare-and-swap →
 * retry. Keeps, per pool, the block it last allocated from; the repository keeps that block as this process
 * wrote it, so the steady state is one commit (plus a read after another host's write), whatever the pool's size
 * and fill. Each host starts at a block picked from a hash of its id, which spreads hosts over the pool.
 */
export class AllocationService {
  private readonly cursors = new Map<string, bigint>();

  constructor(
    private readonly blocks: BlockRepository,
    private readonly retry: ConflictRetry,
    private readonly hostId: string,
  ) {}

  /** Allocates up to metas.length addresses from one block in one commit; returns the addresses (at least one). */
  async allocate(ref: PoolRef, poolId: string, metas: AssignmentMeta[]): Promise<string[]> {
    const tried = new Set<bigint>();
    return this.retry.retrying('allocate an address', () => this.allocateOnce(ref, poolId, metas, tried));
  }

  private async allocateOnce(ref: PoolRef, poolId: string, metas: AssignmentMeta[], tried: Set<bigint>): Promise<string[] | undefined> {
    const poolKey = formatSubnet(ref.subnet);
    for (;;) {
      let block = this.cursors.get(poolKey);
      if (block === undefined) {
        block = await this.startBlock(ref, poolId);
        this.cursors.set(poolKey, block);
      }
      const cached = this.blocks.takeCached(ref.subnet, block);
      const view = cached ?? (await this.blocks.read(ref.subnet, block));
      if (!view) throw poolNotFound(poolId);
      const all = allocatable(view.config, ref.subnet);
      const allowed = allowedFor(view.config, ref, all);
      const { offsets, edit } = autoAssign(blockState(view), metas.length, allowed, all);
      if (!edit) {
        tried.add(block);
        const next = await this.nextBlock(view, ref, allowed, all, tried);
        if (next === undefined) throw poolExhausted(poolId);
        this.cursors.set(poolKey, next);
        continue;
      }
      const since = new Date().toISOString();
      const create = offsets.map((o, i) => ({
        address: addressAt(ref.subnet, o),
        assignment: { hostId: this.hostId, since, poolId, ...definedOnly(metas[i]) },
      }));
      const written = await this.blocks.commit(view, { ...edit, create });
      if (written === undefined) {
        // A stale cached view is not contention: re-read at once instead of backing off.
        if (view === cached) continue;
        return undefined;
      }
      return create.map((c) => c.address);
    }
  }

  private async startBlock(ref: PoolRef, poolId: string): Promise<bigint> {
    const view = await this.blocks.read(ref.subnet, 0n);
    if (!view) throw poolNotFound(poolId);
    const allowed = allowedFor(view.config, ref);
    const seed = BigInt(`0x${createHash('sha256').update(this.hostId).digest('hex').slice(0, 16)}`);
    const start = nthMember(allowed, seed);
    return start === undefined ? 0n : blockOf(start);
  }

  private async nextBlock(view: BlockSnapshot, ref: PoolRef, allowed: Interval[], all: Interval[], tried: Set<bigint>): Promise<bigint | undefined> {
    if (allowed.length === 0) return undefined;
    // The block we just read may be full against a stale hint: fix the hint for the next searcher.
    if (blockFull(view.bits, view.block, all)) {
      await this.blocks.writeHints(view, summaryEdit(blockState(view), view.bits, all).nodes).catch(() => undefined);
    }
    const skip = (b: bigint): boolean => tried.has(b);
    const hinted = await findOpenBlock(ref.subnet.hostBits, allowed, view.block + 1n, (n) => this.blocks.readNode(ref.subnet, n), skip);
    if (hinted !== undefined) return hinted;
    return scanForOpenBlock(await this.blocks.readAll(ref.subnet), allowed, skip);
  }
}

function definedOnly(m: AssignmentMeta | undefined): AssignmentMeta {
  const out: AssignmentMeta = {};
  if (m?.macAddress) out.macAddress = m.macAddress;
  if (m?.endpointName) out.endpointName = m.endpointName;
  return out;
}
