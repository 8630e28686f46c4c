import { FlatnetError } from '../errors.js';
import type { Bitmap } from '../ipam/model/block.js';
import { bitmapFrom } from '../ipam/model/block.js';
import type { AssignmentRead } from '../ipam/model/records.js';
import type { PoolDecision, PoolRecord, PoolRepository, PoolTxn } from '../ipam/ports.js';
import { formatSubnet, parseSubnet, type Subnet } from '../net/address.js';
import type { Interval } from '../net/intervals.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Expect, type Snapshot, type Write } from './etcd-io.js';
import { blockOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeConfig, poolIndexSchema, safeJson } from './records.js';

/**
 * Pool index and pool configs over etcd. An update is one read-decide-write txn: the compares come from what the
 * decision read (config, index, assignments, the block range), the writes from what it decided; a failed compare
 * runs the decision again.
 */
export class EtcdPoolRepository implements PoolRepository {
  constructor(
    private readonly io: EtcdIo,
    private readonly keys: IpamKeys,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  async listSubnets(): Promise<Subnet[]> {
    return this.indexFrom(await this.io.read([this.keys.index()]));
  }

  private indexFrom(snap: Snapshot): Subnet[] {
    const raw = snap.kvs.get(this.keys.index());
    if (!raw) return [];
    const parsed = poolIndexSchema.safeParse(safeJson(raw.value));
    if (!parsed.success) throw new FlatnetError('internal', 'The pool index in etcd is malformed.');
    return parsed.data.subnets.map((s) => parseSubnet(s));
  }

  async read(subnet: Subnet): Promise<PoolRecord | undefined> {
    const key = this.keys.config(subnet);
    const kv = (await this.io.read([key])).kvs.get(key);
    return kv ? { subnet, config: decodeConfig(kv.value, key) } : undefined;
  }

  async readAll(): Promise<PoolRecord[]> {
    const out: PoolRecord[] = [];
    for (const subnet of await this.listSubnets()) {
      const p = await this.read(subnet);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * The block keys holding part of an interval of offsets: block keys are fixed-width hex, so they sort like their
   * indexes and the blocks of an interval are one key range (its end just past the last block's key).
   */
  private blockKeyRange(subnet: Subnet, within: Interval): { start: string; end: string } {
    return { start: this.keys.block(subnet, within.start >> 8n), end: `${this.keys.block(subnet, within.end >> 8n)}\0` };
  }

  update<T>(
    what: string,
    subnet: Subnet,
    decide: (tx: PoolTxn) => Promise<PoolDecision<T>> | PoolDecision<T>,
    prefetch: { addresses?: string[] } = {},
  ): Promise<T> {
    const configKey = this.keys.config(subnet);
    const indexKey = this.keys.index();
    const prefetched = (prefetch.addresses ?? []).map((a) => this.keys.addr(subnet, a));
    return this.io
      .retrying(what, async () => {
        const snapshot = await this.io.read([indexKey, configKey, ...prefetched]);
        const index = this.indexFrom(snapshot);
        const kv = snapshot.kvs.get(configKey);
        const current = kv ? decodeConfig(kv.value, configKey) : undefined;
        // The read set: every key (and the block range) the decision looked at, with the revision it saw.
        const addrReads = new Map<string, string | undefined>();
        const blocksRead: { start: string; end: string; revision: string }[] = [];
        const tx: PoolTxn = {
          current,
          index,
          assignment: async (address: string): Promise<AssignmentRead | undefined> => {
            const key = this.keys.addr(subnet, address);
            const held = prefetched.includes(key) ? snapshot.kvs.get(key) : (await this.io.read([key])).kvs.get(key);
            if (!addrReads.has(key)) addrReads.set(key, held?.modRevision);
            return held ? decodeAssignment(held.value) : undefined;
          },
          blocks: async (within?: Interval): Promise<Map<bigint, Bitmap>> => {
            const prefix = this.keys.blockPrefix(subnet);
            const { start, end } = within ? this.blockKeyRange(subnet, within) : { start: prefix, end: prefixEnd(prefix) };
            const snap = await this.io.readPaged(start, end, this.pageSize);
            blocksRead.push({ start, end, revision: snap.revision });
            const blocks = new Map<bigint, Bitmap>();
            for (const b of snap.kvs.values()) blocks.set(blockOfKey(prefix, b.key), bitmapFrom(b.value));
            return blocks;
          },
        };
        const d = await decide(tx);
        if (d.next === undefined) return { value: d.result };
        const expect: Expect[] = [{ key: configKey, modRevision: kv?.modRevision }];
        for (const [key, modRevision] of addrReads) expect.push({ key, modRevision });
        const w: Write = { expect, puts: [], ...(blocksRead.length > 0 ? { unchangedSince: blocksRead } : {}) };
        const others = index.filter((s) => formatSubnet(s) !== formatSubnet(subnet));
        const indexRev = snapshot.kvs.get(indexKey)?.modRevision;
        if (d.next === 'delete') {
          if (current) {
            const poolPrefix = this.keys.poolPrefix(subnet);
            w.deleteRanges = [{ start: poolPrefix, end: prefixEnd(poolPrefix) }];
            w.puts.push({ key: indexKey, value: JSON.stringify({ subnets: others.map(formatSubnet) }) });
            expect.push({ key: indexKey, modRevision: indexRev });
          }
        } else {
          if (!current) {
            w.puts.push({ key: indexKey, value: JSON.stringify({ subnets: [...others, subnet].map(formatSubnet).sort() }) });
            expect.push({ key: indexKey, modRevision: indexRev });
          }
          w.puts.push({ key: configKey, value: JSON.stringify(d.next) });
        }
        return (await this.io.write(w)) ? { value: d.result } : undefined;
      })
      .then((r) => r.value);
  }
}
