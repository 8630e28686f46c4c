import { ancestors, type Bitmap, bitmapFrom, type NodeRef } from '../ipam/model/block.js';
import { type Cooling, decodeCooling, encodeCooling, type ReleasedRecord } from '../ipam/model/cooling-record.js';
import type { AssignmentRead } from '../ipam/model/records.js';
import type { BlockCommit, BlockRepository, BlockSnapshot, CommitCapacity } from '../ipam/ports.js';
import type { Subnet } from '../net/address.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Expect, type Write } from './etcd-io.js';
import { blockOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeConfig, decodeNameIndex, decodeReleased, encodeIndexEntry } from './records.js';
import { MARKER_COST, opBytes, perTxn, splitByBudget, type TxnCost } from './txn-budget.js';

/** Longest key or record the capacity reckons with per address (addr, rel, index and name keys, their values). */
const ADDRESS_KEY_BYTES = 512;
const RECORD_BYTES = 4096;

/** The revisions a snapshot was read at: what its commit compares. */
interface ReadRevisions {
  config: string;
  block: string | undefined;
  nodes: (string | undefined)[];
  /** Per address read: the addr key's mod revision (undefined = absent). */
  addresses: Map<string, string | undefined>;
  /** Per address read: the rel key's mod revision (undefined = absent). */
  released: Map<string, string | undefined>;
}

const MAX_CACHED_BLOCKS = 256;

/**
 * A block commit spends, besides its addresses: the config's and the block's compares, the block, each summary
 * node above it (compare and put), the cool key, and the txn marker. A freed address: the addr key (compare,
 * delete), its index entry (delete), its released record (put or compare-and-delete), its name entry (put). A
 * created one: the addr key (compare, put), its index entry (put), its name entry when named (put).
 */
export function blockCommitCapacity(subnet: Subnet): CommitCapacity {
  const levels = ancestors(0n, subnet.hostBits).length;
  const fixed: TxnCost = {
    compares: 2 + levels + MARKER_COST.compares,
    writes: 2 + levels + MARKER_COST.writes,
    bytes: MARKER_COST.bytes + (3 + levels) * opBytes('k'.repeat(ADDRESS_KEY_BYTES), 'v'.repeat(256 * 6)),
  };
  const removal: TxnCost = { compares: 2, writes: 4, bytes: 4 * ADDRESS_KEY_BYTES + 2 * RECORD_BYTES };
  // costOf counts writes (2 or 3 per address, each under a record's bytes); compares stay fewer than writes.
  const writes = perTxn({ compares: 0, writes: 1, bytes: ADDRESS_KEY_BYTES + RECORD_BYTES }, fixed);
  return {
    removals: perTxn(removal, fixed),
    creations: (named) => ({ costOf: (i) => 2 + (named[i] ? 1 : 0), total: writes }),
  };
}

/** Blocks, summary nodes and assignment keys of the pools over etcd: the allocation and release txns. */
export class EtcdBlockRepository implements BlockRepository {
  /** What each snapshot handed out was read at; the snapshots themselves stay plain data. */
  private readonly revisions = new WeakMap<BlockSnapshot, ReadRevisions>();
  /**
   * Each block as this process last wrote it (allocations and releases alike): the next allocation in it may
   * commit without a read. Only another host's write makes it stale, and the txn's compare catches that.
   */
  private readonly written = new Map<string, BlockSnapshot>();

  constructor(
    private readonly io: EtcdIo,
    private readonly keys: IpamKeys,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  capacity(subnet: Subnet): CommitCapacity {
    return blockCommitCapacity(subnet);
  }

  takeCached(subnet: Subnet, block: bigint): BlockSnapshot | undefined {
    const key = this.keys.block(subnet, block);
    const view = this.written.get(key);
    this.written.delete(key);
    return view;
  }

  private remember(key: string, view: BlockSnapshot, rev: string): void {
    const cached = this.written.get(key);
    const known = cached ? this.revisions.get(cached)?.block : undefined;
    // Replies may arrive out of order: keep the newest write.
    if (known !== undefined && BigInt(known) > BigInt(rev)) return;
    this.written.delete(key);
    this.written.set(key, view);
    // Only recently written blocks are worth keeping: the oldest go first (a Map iterates in insertion order).
    while (this.written.size > MAX_CACHED_BLOCKS) {
      const oldest = this.written.keys().next().value;
      if (oldest === undefined) break;
      this.written.delete(oldest);
    }
  }

  async read(subnet: Subnet, block: bigint, addresses: string[] = []): Promise<BlockSnapshot | undefined> {
    const configKey = this.keys.config(subnet);
    const blockKey = this.keys.block(subnet, block);
    const refs = ancestors(block, subnet.hostBits);
    const nodeKeys = refs.map((r) => this.keys.summary(subnet, r.level, r.index));
    const coolKey = this.keys.cool(subnet, block);
    const addrKeys = addresses.map((a) => this.keys.addr(subnet, a));
    const relKeys = addresses.map((a) => this.keys.released(subnet, a));
    const snap = await this.io.read([configKey, blockKey, coolKey, ...nodeKeys, ...addrKeys, ...relKeys]);
    const cfg = snap.kvs.get(configKey);
    if (!cfg) return undefined;
    const b = snap.kvs.get(blockKey);
    const assignments = new Map<string, AssignmentRead>();
    const addrRevs = new Map<string, string | undefined>();
    const released = new Map<string, ReleasedRecord>();
    const relRevs = new Map<string, string | undefined>();
    addresses.forEach((address, i) => {
      const kv = snap.kvs.get(addrKeys[i] as string);
      addrRevs.set(address, kv?.modRevision);
      if (kv) assignments.set(address, decodeAssignment(kv.value));
      const rel = snap.kvs.get(relKeys[i] as string);
      relRevs.set(address, rel?.modRevision);
      const record = rel ? decodeReleased(rel.value) : undefined;
      if (record) released.set(address, record);
    });
    const view: BlockSnapshot = {
      subnet,
      config: decodeConfig(cfg.value, configKey),
      block,
      bits: bitmapFrom(b?.value),
      nodes: refs.map((ref, i) => ({ ref, bits: bitmapFrom(snap.kvs.get(nodeKeys[i] as string)?.value) })),
      assignments,
      cooling: decodeCooling(snap.kvs.get(coolKey)?.value),
      released,
    };
    this.revisions.set(view, {
      config: cfg.modRevision,
      block: b?.modRevision,
      nodes: nodeKeys.map((k) => snap.kvs.get(k)?.modRevision),
      addresses: addrRevs,
      released: relRevs,
    });
    return view;
  }

  private revisionsOf(view: BlockSnapshot): ReadRevisions {
    const r = this.revisions.get(view);
    if (!r) throw new Error('EtcdBlockRepository: a snapshot this repository did not read');
    return r;
  }

  async readNode(subnet: Subnet, ref: NodeRef): Promise<Bitmap> {
    const key = this.keys.summary(subnet, ref.level, ref.index);
    return bitmapFrom((await this.io.read([key])).kvs.get(key)?.value);
  }

  async readAll(subnet: Subnet): Promise<Map<bigint, Bitmap>> {
    const prefix = this.keys.blockPrefix(subnet);
    const snap = await this.io.readPaged(prefix, prefixEnd(prefix), this.pageSize);
    const blocks = new Map<bigint, Bitmap>();
    for (const kv of snap.kvs.values()) blocks.set(blockOfKey(prefix, kv.key), bitmapFrom(kv.value));
    return blocks;
  }

  async readCooling(subnet: Subnet): Promise<Map<bigint, Cooling>> {
    const prefix = this.keys.coolPrefix(subnet);
    const snap = await this.io.readPaged(prefix, prefixEnd(prefix), this.pageSize);
    const out = new Map<bigint, Cooling>();
    for (const kv of snap.kvs.values()) {
      const c = decodeCooling(kv.value);
      if (c.size > 0) out.set(blockOfKey(prefix, kv.key), c);
    }
    return out;
  }

  async readName(subnet: Subnet, name: string): Promise<string | undefined> {
    const key = this.keys.name(subnet, name);
    const kv = (await this.io.read([key])).kvs.get(key);
    return kv ? decodeNameIndex(kv.value) : undefined;
  }

  /** One txn: compares config, block, the changed nodes and removed assignments as read, new ones absent. */
  async commit(view: BlockSnapshot, change: BlockCommit): Promise<BlockSnapshot | undefined> {
    const { subnet } = view;
    const revs = this.revisionsOf(view);
    const blockKey = this.keys.block(subnet, view.block);
    const expect: Expect[] = [
      { key: this.keys.config(subnet), modRevision: revs.config },
      { key: blockKey, modRevision: revs.block },
    ];
    const w: Write = { expect, puts: [{ key: blockKey, value: Buffer.from(change.bits) }], deletes: [] };
    this.addNodeWrites(view, revs, change.nodes, w);
    for (const c of change.create ?? []) {
      const key = this.keys.addr(subnet, c.address);
      expect.push({ key, modRevision: undefined });
      w.puts.push({ key, value: JSON.stringify(c.assignment) });
      w.puts.push({
        key: this.keys.hostAddr(c.assignment.hostId, subnet, c.address),
        value: encodeIndexEntry(c.assignment),
      });
    }
    for (const address of change.remove ?? []) {
      if (!revs.addresses.has(address)) throw new Error(`EtcdBlockRepository: ${address} removed without being read`);
      const key = this.keys.addr(subnet, address);
      expect.push({ key, modRevision: revs.addresses.get(address) });
      w.deletes?.push(key);
      // The index entry goes with its record (an unreadable record names no host: its entry, if any, stays stale).
      const held = view.assignments.get(address);
      if (held !== undefined && held !== 'unreadable')
        w.deletes?.push(this.keys.hostAddr(held.assignment.hostId, subnet, address));
    }
    this.addCoolingWrites(view, revs, change, w);
    const revision = await this.io.writeAt(w);
    if (revision === undefined) return undefined;
    const after: BlockSnapshot = {
      ...view,
      bits: change.bits,
      nodes: view.nodes.map((n, i) => {
        const bits = change.nodes[i];
        return bits === undefined ? n : { ...n, bits };
      }),
      // What an allocation from the cache needs: the addresses it creates are compared as absent anyway.
      assignments: new Map(),
      cooling: change.cooling ?? view.cooling,
      released: new Map(),
    };
    this.revisions.set(after, {
      config: revs.config,
      block: revision,
      nodes: revs.nodes.map((r, i) => (change.nodes[i] === undefined ? r : revision)),
      addresses: new Map(),
      released: new Map(),
    });
    this.remember(blockKey, after, revision);
    return after;
  }

  /**
   * The cool key, released records and name index. Every writer of these also writes the block, so the block's
   * revision compare covers them; a released record that was read is compared as read all the same.
   */
  private addCoolingWrites(view: BlockSnapshot, revs: ReadRevisions, change: BlockCommit, w: Write): void {
    const { subnet } = view;
    if (change.cooling !== undefined && (change.cooling.size > 0 || view.cooling.size > 0)) {
      const key = this.keys.cool(subnet, view.block);
      if (change.cooling.size > 0) w.puts.push({ key, value: Buffer.from(encodeCooling(change.cooling)) });
      else w.deletes?.push(key);
    }
    const written = new Set<string>();
    for (const r of change.release ?? []) {
      const key = this.keys.released(subnet, r.address);
      written.add(key);
      w.puts.push({ key, value: JSON.stringify(r.record) });
    }
    for (const address of change.dropReleased ?? []) {
      const key = this.keys.released(subnet, address);
      if (written.has(key)) continue;
      const rev = revs.released.get(address);
      if (rev !== undefined) w.expect.push({ key, modRevision: rev });
      w.deletes?.push(key);
    }
    // etcd refuses a txn that writes one key twice: the last entry for a name wins.
    const names = new Map((change.names ?? []).map((n) => [this.keys.name(subnet, n.name), n.address]));
    for (const [key, address] of names) w.puts.push({ key, value: JSON.stringify({ address }) });
  }

  private addNodeWrites(
    view: BlockSnapshot,
    revs: ReadRevisions,
    nodes: readonly (Bitmap | undefined)[],
    w: Write,
  ): void {
    nodes.forEach((bits, i) => {
      const node = view.nodes[i];
      if (!bits || !node) return;
      const key = this.keys.summary(view.subnet, node.ref.level, node.ref.index);
      w.expect.push({ key, modRevision: revs.nodes[i] });
      w.puts.push({ key, value: Buffer.from(bits) });
    });
  }

  async writeHints(view: BlockSnapshot, nodes: readonly (Bitmap | undefined)[]): Promise<void> {
    const w: Write = { expect: [], puts: [] };
    this.addNodeWrites(view, this.revisionsOf(view), nodes, w);
    if (w.puts.length > 0) await this.io.write(w);
  }

  /** Writes bitmaps wholesale (benchmarks fill pools this way); summary bits are left for the txns to repair. */
  async writeBlocks(
    subnet: Subnet,
    blocks: Map<bigint, Bitmap>,
    summaries: Map<string, Bitmap> = new Map(),
  ): Promise<void> {
    const puts = [...blocks].map(([i, b]) => ({ key: this.keys.block(subnet, i), value: Buffer.from(b) }));
    for (const [k, b] of summaries) {
      const [level, index] = k.split(':');
      puts.push({ key: this.keys.summary(subnet, Number(level), BigInt(index as string)), value: Buffer.from(b) });
    }
    for (const group of splitByBudget(
      puts,
      (p) => ({ compares: 0, writes: 1, bytes: opBytes(p.key, p.value) }),
      MARKER_COST,
    ))
      await this.io.write({ expect: [], puts: group });
  }
}
