import type { Subnet } from '../ipam/address.js';
import { type Bitmap, bitmapFrom, blockFull, withBit } from '../ipam/bitmap.js';
import type { Interval } from '../ipam/intervals.js';
import type { Assignment } from '../ipam/pool-config.js';
import { ancestors, type NodeRef, pathUpdate } from '../ipam/summary-tree.js';
import type { EtcdIo, Expect, Snapshot, Write } from './etcd-io.js';
import { type IpamKeys, prefixEnd } from './keys.js';
import { decodeConfig, type PoolState } from './pool-store.js';

export interface BlockView {
  pool: PoolState;
  block: bigint;
  bits: Bitmap;
  blockRev: string | undefined;
  nodes: { ref: NodeRef; key: string; bits: Bitmap; rev: string | undefined }[];
  snapshot: Snapshot;
}

export interface BlockChange {
  /** The new bitmap of the block. */
  bits: Bitmap;
  /** The pool-wide allocatable set: decides whether the block is now full (summary hint). */
  allocatable: readonly Interval[];
  create?: { address: string; assignment: Assignment }[];
  remove?: { address: string; modRevision: string }[];
}

const MAX_CACHED_BLOCKS = 256;

/** Blocks, summary nodes and assignment keys of one pool: the allocation and release txns. */
export class BlockStore {
  /**
   * Each block as this process last wrote it (allocations and releases alike): the next allocation in it may
   * commit without a read. Only another host's write makes it stale, and the txn's compare catches that.
   */
  private readonly written = new Map<string, BlockView>();

  constructor(
    readonly io: EtcdIo,
    readonly keys: IpamKeys,
  ) {}

  /** The cached view of a block, handed to one caller (it is re-cached by that caller's commit). */
  takeCached(subnet: Subnet, block: bigint): BlockView | undefined {
    const key = this.keys.block(subnet, block);
    const view = this.written.get(key);
    this.written.delete(key);
    return view;
  }

  private remember(key: string, view: BlockView): void {
    const known = this.written.get(key)?.blockRev;
    // Replies may arrive out of order: keep the newest write.
    if (known !== undefined && view.blockRev !== undefined && BigInt(known) > BigInt(view.blockRev)) return;
    this.written.delete(key);
    this.written.set(key, view);
    // Only recently written blocks are worth keeping: the oldest go first (a Map iterates in insertion order).
    while (this.written.size > MAX_CACHED_BLOCKS) {
      const oldest = this.written.keys().next().value;
      if (oldest === undefined) break;
      this.written.delete(oldest);
    }
  }

  /** Config, block and the block's summary path (plus extra keys) in one consistent read; undefined = no pool. */
  async readBlock(subnet: Subnet, block: bigint, extraKeys: string[] = []): Promise<BlockView | undefined> {
    const configKey = this.keys.config(subnet);
    const blockKey = this.keys.block(subnet, block);
    const refs = ancestors(block, subnet.hostBits);
    const nodeKeys = refs.map((r) => this.keys.summary(subnet, r.level, r.index));
    const snapshot = await this.io.read([configKey, blockKey, ...nodeKeys, ...extraKeys]);
    const cfg = snapshot.kvs.get(configKey);
    if (!cfg) return undefined;
    const b = snapshot.kvs.get(blockKey);
    return {
      pool: { subnet, config: decodeConfig(cfg.value, configKey), rev: cfg.modRevision },
      block,
      bits: bitmapFrom(b?.value),
      blockRev: b?.modRevision,
      nodes: refs.map((ref, i) => {
        const key = nodeKeys[i] as string;
        const kv = snapshot.kvs.get(key);
        return { ref, key, bits: bitmapFrom(kv?.value), rev: kv?.modRevision };
      }),
      snapshot,
    };
  }

  async readNode(subnet: Subnet, ref: NodeRef): Promise<Bitmap> {
    const key = this.keys.summary(subnet, ref.level, ref.index);
    return bitmapFrom((await this.io.read([key])).kvs.get(key)?.value);
  }

  /** Every stored block of the pool (absent blocks are all free), for scans at exhaustion and range checks. */
  async readAllBlocks(subnet: Subnet): Promise<{ blocks: Map<bigint, Bitmap>; revision: string }> {
    const prefix = this.keys.blockPrefix(subnet);
    const snap = await this.io.readRange(prefix, prefixEnd(prefix));
    const blocks = new Map<bigint, Bitmap>();
    for (const kv of snap.kvs.values()) blocks.set(BigInt(`0x${kv.key.slice(prefix.length)}`), bitmapFrom(kv.value));
    return { blocks, revision: snap.revision };
  }

  /**
   * The block txn: compares config, block and assignment keys; writes them and the summary bits that change.
   * Returns the view as it is after the write (so the next allocation can skip its read), or undefined on a
   * conflict.
   */
  async commit(view: BlockView, change: BlockChange): Promise<BlockView | undefined> {
    const { subnet } = view.pool;
    const blockKey = this.keys.block(subnet, view.block);
    const expect: Expect[] = [
      { key: this.keys.config(subnet), modRevision: view.pool.rev },
      { key: blockKey, modRevision: view.blockRev },
    ];
    const w: Write = { expect, puts: [{ key: blockKey, value: Buffer.from(change.bits) }], deletes: [] };
    const full = blockFull(change.bits, view.block, change.allocatable);
    const updates = pathUpdate(view.block, subnet.hostBits, full, view.nodes.map((n) => n.bits), change.allocatable, withBit);
    const changedNodes = new Map<number, Bitmap>();
    updates.forEach((u, i) => {
      const node = view.nodes[i];
      if (!u || !node) return;
      expect.push({ key: node.key, modRevision: node.rev });
      w.puts.push({ key: node.key, value: Buffer.from(u) });
      changedNodes.set(i, u);
    });
    for (const c of change.create ?? []) {
      const key = this.keys.addr(subnet, c.address);
      expect.push({ key, modRevision: undefined });
      w.puts.push({ key, value: JSON.stringify(c.assignment) });
    }
    for (const r of change.remove ?? []) {
      const key = this.keys.addr(subnet, r.address);
      expect.push({ key, modRevision: r.modRevision });
      w.deletes?.push(key);
    }
    const revision = await this.io.writeAt(w);
    if (revision === undefined) return undefined;
    const after: BlockView = {
      ...view,
      bits: change.bits,
      blockRev: revision,
      nodes: view.nodes.map((n, i) => {
        const bits = changedNodes.get(i);
        return bits === undefined ? n : { ...n, bits, rev: revision };
      }),
    };
    this.remember(blockKey, after);
    return after;
  }

  /** Only the summary bits (hint repair after finding a block full or free against its hint); best effort. */
  async repairHints(view: BlockView, allocatable: readonly Interval[]): Promise<void> {
    const { subnet } = view.pool;
    const full = blockFull(view.bits, view.block, allocatable);
    const updates = pathUpdate(view.block, subnet.hostBits, full, view.nodes.map((n) => n.bits), allocatable, withBit);
    const w: Write = { expect: [], puts: [] };
    updates.forEach((u, i) => {
      const node = view.nodes[i];
      if (!u || !node) return;
      w.expect.push({ key: node.key, modRevision: node.rev });
      w.puts.push({ key: node.key, value: Buffer.from(u) });
    });
    if (w.puts.length > 0) await this.io.write(w);
  }

  /** Writes bitmaps wholesale (benchmarks fill pools this way); summary bits are left for the txns to repair. */
  async writeBlocks(subnet: Subnet, blocks: Map<bigint, Bitmap>, summaries: Map<string, Bitmap> = new Map()): Promise<void> {
    const puts = [...blocks].map(([i, b]) => ({ key: this.keys.block(subnet, i), value: Buffer.from(b) }));
    for (const [k, b] of summaries) {
      const [level, index] = k.split(':');
      puts.push({ key: this.keys.summary(subnet, Number(level), BigInt(index as string)), value: Buffer.from(b) });
    }
    for (let i = 0; i < puts.length; i += 100) await this.io.write({ expect: [], puts: puts.slice(i, i + 100) });
  }
}
