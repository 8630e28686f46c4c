import { z } from 'zod';
import { FlatnetError } from '../errors.js';
import { formatSubnet, parseSubnet, type Subnet, subnetsOverlap } from '../ipam/address.js';
import { type PoolConfig, poolConfigSchema } from '../ipam/pool-config.js';
import type { EtcdIo, Expect, Snapshot, Write } from './etcd-io.js';
import { type IpamKeys, prefixEnd } from './keys.js';

const indexSchema = z.object({ subnets: z.array(z.string()) });

export interface PoolState {
  subnet: Subnet;
  config: PoolConfig;
  rev: string;
}

export interface PoolContext {
  current: PoolConfig | undefined;
  index: Subnet[];
  snapshot: Snapshot;
}

/** What a config mutation decided: the result to return and the writes (next config or deletion) to commit. */
export interface PoolDecision<T> {
  result: T;
  next?: PoolConfig | 'delete';
  extra?: Partial<Write>;
}

export function decodeConfig(raw: Buffer, key: string): PoolConfig {
  const parsed = poolConfigSchema.safeParse(safeJson(raw));
  if (!parsed.success) throw new FlatnetError('internal', `The pool config at ${key} in etcd is malformed: ${parsed.error.message}`);
  return parsed.data;
}

export function safeJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString());
  } catch {
    return undefined;
  }
}

/** Pool index and pool configs: creating, changing and deleting pools, each in one compare-and-write txn. */
export class PoolStore {
  constructor(
    readonly io: EtcdIo,
    readonly keys: IpamKeys,
  ) {}

  async readIndex(): Promise<Subnet[]> {
    const snap = await this.io.read([this.keys.index()]);
    return this.indexFrom(snap);
  }

  private indexFrom(snap: Snapshot): Subnet[] {
    const raw = snap.kvs.get(this.keys.index());
    if (!raw) return [];
    const parsed = indexSchema.safeParse(safeJson(raw.value));
    if (!parsed.success) throw new FlatnetError('internal', 'The pool index in etcd is malformed.');
    return parsed.data.subnets.map((s) => parseSubnet(s));
  }

  async readPool(subnet: Subnet): Promise<PoolState | undefined> {
    const key = this.keys.config(subnet);
    const kv = (await this.io.read([key])).kvs.get(key);
    return kv ? { subnet, config: decodeConfig(kv.value, key), rev: kv.modRevision } : undefined;
  }

  async readAllPools(): Promise<PoolState[]> {
    const out: PoolState[] = [];
    for (const subnet of await this.readIndex()) {
      const p = await this.readPool(subnet);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * Read-decide-write on one pool config, retried on conflict. Creating a pool checks its subnet against every
   * other pool in the index and adds it there; 'delete' removes the pool's keys and its index entry. Both
   * compare the index's revision, so two hosts cannot create overlapping pools at once.
   */
  async mutate<T>(what: string, subnet: Subnet, extraKeys: string[], decide: (ctx: PoolContext) => Promise<PoolDecision<T>> | PoolDecision<T>): Promise<T> {
    const configKey = this.keys.config(subnet);
    const indexKey = this.keys.index();
    return this.io.retrying(what, async () => {
      const snapshot = await this.io.read([indexKey, configKey, ...extraKeys]);
      const index = this.indexFrom(snapshot);
      const kv = snapshot.kvs.get(configKey);
      const current = kv ? decodeConfig(kv.value, configKey) : undefined;
      const d = await decide({ current, index, snapshot });
      if (d.next === undefined && !d.extra) return { value: d.result };
      const expect: Expect[] = [{ key: configKey, modRevision: kv?.modRevision }, ...(d.extra?.expect ?? [])];
      const w: Write = { ...d.extra, expect, puts: [...(d.extra?.puts ?? [])] };
      const others = index.filter((s) => formatSubnet(s) !== formatSubnet(subnet));
      if (d.next === 'delete') {
        if (current) {
          w.deleteRanges = [...(w.deleteRanges ?? []), { start: this.keys.poolPrefix(subnet), end: prefixEnd(this.keys.poolPrefix(subnet)) }];
          w.puts.push({ key: indexKey, value: JSON.stringify({ subnets: others.map(formatSubnet) }) });
          expect.push({ key: indexKey, modRevision: snapshot.kvs.get(indexKey)?.modRevision });
        }
      } else if (d.next) {
        if (!current) {
          const clash = others.find((s) => subnetsOverlap(s, subnet));
          if (clash) {
            throw new FlatnetError('conflict', `${formatSubnet(subnet)} overlaps the existing pool ${formatSubnet(clash)}; use that subnet or one apart from it.`);
          }
          w.puts.push({ key: indexKey, value: JSON.stringify({ subnets: [...others, subnet].map(formatSubnet).sort() }) });
          expect.push({ key: indexKey, modRevision: snapshot.kvs.get(indexKey)?.modRevision });
        }
        w.puts.push({ key: configKey, value: JSON.stringify(d.next) });
      }
      return (await this.io.write(w)) ? { value: d.result } : undefined;
    }).then((r) => r.value);
  }
}
