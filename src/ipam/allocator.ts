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

/**
 * Chooses and commits container addresses. Keeps, per pool, the block it last allocated from; the store keeps
 * that block as this process wrote it, so the steady state is one txn (plus a read after another host's
 * write), whatever the pool's size and fill.
 * Each host starts at a block picked from a hash of its id, which spreads hosts over the pool.
 */
export class Allocator {
  private readonly cursors = new Map<string, bigint>();

  constructor(
    private readonly store: BlockStore,
    private readonly hostId: string,
  ) {}

  /** Allocates up to metas.length addresses from one block in one txn; returns the addresses (at least one). */
  async allocate(ref: PoolRef, poolId: string, metas: AssignmentMeta[]): Promise<string[]> {
    const tried = new Set<bigint>();
    return this.store.io.retrying('allocate an address', () => this.allocateOnce(ref, poolId, metas, tried));
  }

  private async allocateOnce(ref: PoolRef, poolId: string, metas: AssignmentMeta[], tried: Set<bigint>): Promise<string[] | undefined> {
    const poolKey = formatSubnet(ref.subnet);
    for (;;) {
      let block = this.cursors.get(poolKey);
      if (block === undefined) {
        block = await this.startBlock(ref);
        this.cursors.set(poolKey, block);
      }
      const cached = this.store.takeCached(ref.subnet, block);
      const view = cached ?? (await this.store.readBlock(ref.subnet, block));
      if (!view) throw new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
      const all = allocatable(view.pool.config, ref.subnet);
      const allowed = allowedFor(view.pool.config, ref, all);
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

  private async startBlock(ref: PoolRef): Promise<bigint> {
    const view = await this.store.readBlock(ref.subnet, 0n);
    if (!view) throw new FlatnetError('not-found', `Pool ${formatSubnet(ref.subnet)} does not exist (was its network removed?).`);
    const allowed = allowedFor(view.pool.config, ref);
    const seed = BigInt(`0x${createHash('sha256').update(this.hostId).digest('hex').slice(0, 16)}`);
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
