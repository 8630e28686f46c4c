import { FlatnetError } from '../errors.js';
import type { Bitmap } from '../ipam/model/block.js';
import { bitmapFrom } from '../ipam/model/block.js';
import type { AssignmentRead, ClaimRecord, PoolConfig } from '../ipam/model/records.js';
import type { PoolDecision, PoolRecord, PoolRepository, PoolTxn } from '../ipam/ports.js';
import { formatSubnet, parseSubnet, type Subnet } from '../net/address.js';
import type { Interval } from '../net/intervals.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Expect, type Snapshot, type Write } from './etcd-io.js';
import { blockOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeClaims, decodeConfig, poolIndexSchema, safeJson } from './records.js';

/** A pool's config as stored plus its hosts' claim keys, read at one revision. */
interface StoredPool {
  /** The config with every claim (embedded ones of older versions and the claim keys'). */
  config: PoolConfig;
  /** The config key as stored (its own embedded claims included). */
  stored: PoolConfig;
  modRevision: string;
  /** Per host with a claim key: its claims as stored. */
  keyed: Map<string, ClaimRecord[]>;
}

/** Deterministic JSON (sorted keys), to tell whether a config really changed. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

function byHost(claims: readonly ClaimRecord[]): Map<string, ClaimRecord[]> {
  const out = new Map<string, ClaimRecord[]>();
  for (const c of claims) out.set(c.hostId, [...(out.get(c.hostId) ?? []), c]);
  return out;
}

/**
 * Pool index and pool configs over etcd. An update is one read-decide-write txn: the compares come from what the
 * decision read (config, index, claims, assignments, the block range), the writes from what it decided; a failed
 * compare runs the decision again.
 *
 * Claims live in one key per host (claim/<hostId>), not in the config: a network create or rm on one host then
 * writes only its claim key, and no allocation (which compares the config) conflicts with it. A config that still
 * embeds claims (older versions) is read as it is, and its claims move to the claim keys at the next write.
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

  private claimRange(subnet: Subnet): { start: string; end: string } {
    const start = this.keys.claimPrefix(subnet);
    return { start, end: prefixEnd(start) };
  }

  /** The pool out of a snapshot that read its config key and its claim range. */
  private poolFrom(subnet: Subnet, snap: Snapshot): StoredPool | undefined {
    const key = this.keys.config(subnet);
    const kv = snap.kvs.get(key);
    if (!kv) return undefined;
    const stored = decodeConfig(kv.value, key);
    const prefix = this.keys.claimPrefix(subnet);
    const keyed = new Map<string, ClaimRecord[]>();
    for (const c of snap.kvs.values()) {
      if (!c.key.startsWith(prefix)) continue;
      const hostId = decodeURIComponent(c.key.slice(prefix.length));
      keyed.set(hostId, decodeClaims(c.value, c.key, hostId));
    }
    // A host's claim key, once written, holds all of its claims; embedded ones count for hosts without one.
    const claims = [...stored.claims.filter((c) => !keyed.has(c.hostId)), ...[...keyed.values()].flat()];
    return { config: { ...stored, claims }, stored, modRevision: kv.modRevision, keyed };
  }

  async read(subnet: Subnet): Promise<PoolRecord | undefined> {
    const p = this.poolFrom(subnet, await this.io.read([this.keys.config(subnet)], [this.claimRange(subnet)]));
    return p ? { subnet, config: p.config } : undefined;
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
    return {
      start: this.keys.block(subnet, within.start >> 8n),
      end: `${this.keys.block(subnet, within.end >> 8n)}\0`,
    };
  }

  /**
   * The config key is written only when more than the claims changed (or it still embeds claims to move out);
   * each host's claim key only when that host's claims changed. A host's last claim leaves its key as [] rather
   * than deleting it: the decisions read the claim keys and are committed under a range compare ("nothing in the
   * range modified since the read"), which cannot see a key that is gone. Deleted, a release beside another
   * update would be undone by the old list that update writes back, or two hosts' releases would each keep a
   * range for the other's claim and leave the pool with no claim and the range for good. The keys go with the pool.
   */
  private addConfigWrites(subnet: Subnet, pool: StoredPool | undefined, next: PoolConfig, w: Write): void {
    const config: PoolConfig = { ...next, claims: [] };
    if (!pool || canonical(config) !== canonical(pool.stored))
      w.puts.push({ key: this.keys.config(subnet), value: JSON.stringify(config) });
    const before = byHost(pool?.config.claims ?? []);
    const after = byHost(next.claims);
    for (const hostId of new Set([...before.keys(), ...after.keys()])) {
      const mine = after.get(hostId) ?? [];
      const migrating = !pool?.keyed.has(hostId) && (before.get(hostId)?.length ?? 0) > 0;
      if (!migrating && canonical(mine) === canonical(before.get(hostId) ?? [])) continue;
      w.puts.push({ key: this.keys.claim(subnet, hostId), value: JSON.stringify(mine) });
    }
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
        const claimRange = this.claimRange(subnet);
        const snapshot = await this.io.read([indexKey, configKey, ...prefetched], [claimRange]);
        const index = this.indexFrom(snapshot);
        const pool = this.poolFrom(subnet, snapshot);
        const current = pool?.config;
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
            const { start, end } = within
              ? this.blockKeyRange(subnet, within)
              : { start: prefix, end: prefixEnd(prefix) };
            const snap = await this.io.readPaged(start, end, this.pageSize);
            blocksRead.push({ start, end, revision: snap.revision });
            const blocks = new Map<bigint, Bitmap>();
            for (const b of snap.kvs.values()) blocks.set(blockOfKey(prefix, b.key), bitmapFrom(b.value));
            return blocks;
          },
        };
        const d = await decide(tx);
        if (d.next === undefined) return { value: d.result };
        const expect: Expect[] = [{ key: configKey, modRevision: pool?.modRevision }];
        for (const [key, modRevision] of addrReads) expect.push({ key, modRevision });
        // No claim key was created or changed since the read (claim keys are never deleted alone, see addConfigWrites).
        const w: Write = {
          expect,
          puts: [],
          deletes: [],
          unchangedSince: [...blocksRead, { ...claimRange, revision: snapshot.revision }],
        };
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
            w.puts.push({
              key: indexKey,
              value: JSON.stringify({ subnets: [...others, subnet].map(formatSubnet).sort() }),
            });
            expect.push({ key: indexKey, modRevision: indexRev });
          }
          this.addConfigWrites(subnet, pool, d.next, w);
        }
        return (await this.io.write(w)) ? { value: d.result } : undefined;
      })
      .then((r) => r.value);
  }
}
