import { FlatnetError } from '../errors.js';
import type { Bitmap } from '../ipam/model/block.js';
import { bitmapFrom } from '../ipam/model/block.js';
import type { AssignmentRead, ClaimRecord, PoolConfig, ReservationRecord } from '../ipam/model/records.js';
import type { PoolDecision, PoolRecord, PoolRepository, PoolTxn, PoolUpdateOptions } from '../ipam/ports.js';
import { formatSubnet, parseSubnet, type Subnet } from '../net/address.js';
import type { Interval } from '../net/intervals.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Expect, type Snapshot, type Write } from './etcd-io.js';
import { blockOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeClaims, decodeConfig, decodeHold, poolIndexSchema, safeJson } from './records.js';

/**
 * The holder every reservation of a config in the current shape carries instead of per-host entries: older
 * versions drop a reservation once its holders map is empty, and must never see it empty while hold keys hold it.
 */
export const KEYED_HOLDERS = '~keyed';

/** A pool's config as stored plus the claim and hold keys read with it, at one revision. */
interface StoredPool {
  /** The logical config: claims and holders merged from the keys (in a host's scope: that host's only). */
  config: PoolConfig;
  /** The config key as stored. */
  stored: PoolConfig;
  modRevision: string;
  /** Per host with a claim key read: its claims as stored. */
  keyed: Map<string, ClaimRecord[]>;
  /** Hold keys read: address → host → refs. */
  holds: Map<string, Map<string, number>>;
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

/** The per-host entries an older version wrote into a stored reservation (the pseudo holder left out). */
function legacyHolders(r: ReservationRecord): Record<string, number> {
  return Object.fromEntries(Object.entries(r.holders).filter(([h]) => h !== KEYED_HOLDERS));
}

/**
 * Pool index and pool configs over etcd. An update is one read-decide-write txn: the compares come from what the
 * decision read, the writes from what it decided; a failed compare runs the decision again.
 *
 * The config key holds what all hosts share and nothing per host: claims live in claim/<hostId>, gateway/aux holds
 * in hold/<ip>/<hostId>. A host's own change (PoolUpdateOptions.onlyHost) reads the config and its own keys and
 * compares exactly those, so a network create or rm on one host conflicts with no other host's. A whole-pool update
 * (creating or dropping shared things, host forget, admin changes) reads every claim and hold key and commits under
 * range compares of both, which see any host's change since the read: claim keys are never deleted alone (a last
 * claim leaves []), and a hold key's deletion only ever makes "nobody holds it" truer.
 *
 * Older versions' configs (claims embedded, reservations with {hostId: refs}) are read as they are; a host's own
 * entries move to its keys at its next write, embedded claims at the next whole-pool write.
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

  private range(start: string): { start: string; end: string } {
    return { start, end: prefixEnd(start) };
  }

  /**
   * The pool out of snapshots that read its config key and its claim and hold keys: all of them, or (`onlyHost`)
   * that host's. A host's claim key, once written, holds all of its claims; embedded ones count for hosts without
   * one. A host's holds are its hold keys plus whatever an older version left in the config for it.
   */
  private poolFrom(subnet: Subnet, snaps: Snapshot[], onlyHost?: string): StoredPool | undefined {
    const key = this.keys.config(subnet);
    const kv = snaps[0]?.kvs.get(key);
    if (!kv) return undefined;
    const stored = decodeConfig(kv.value, key);
    const claimPrefix = this.keys.claimPrefix(subnet);
    const holdPrefix = this.keys.holdPrefix(subnet);
    const keyed = new Map<string, ClaimRecord[]>();
    const holds = new Map<string, Map<string, number>>();
    for (const snap of snaps) {
      for (const c of snap.kvs.values()) {
        if (c.key.startsWith(claimPrefix)) {
          const hostId = decodeURIComponent(c.key.slice(claimPrefix.length));
          keyed.set(hostId, decodeClaims(c.value, c.key, hostId));
        } else if (c.key.startsWith(holdPrefix)) {
          const rest = c.key.slice(holdPrefix.length);
          const cut = rest.lastIndexOf('/');
          if (cut < 0) continue;
          const address = rest.slice(0, cut);
          const byHost = holds.get(address) ?? new Map<string, number>();
          byHost.set(decodeURIComponent(rest.slice(cut + 1)), decodeHold(c.value));
          holds.set(address, byHost);
        }
      }
    }
    const visible = (hostId: string): boolean => onlyHost === undefined || hostId === onlyHost;
    const claims = [
      ...stored.claims.filter((c) => !keyed.has(c.hostId) && visible(c.hostId)),
      ...[...keyed.values()].flat().filter((c) => visible(c.hostId)),
    ];
    const reservations = stored.reservations.map((r) => {
      const holders: Record<string, number> = {};
      const add = (h: string, n: number): void => {
        if (n > 0 && visible(h)) holders[h] = (holders[h] ?? 0) + n;
      };
      for (const [h, n] of Object.entries(legacyHolders(r))) add(h, n);
      for (const [h, n] of holds.get(r.address) ?? []) add(h, n);
      return { ...r, holders };
    });
    return {
      config: { ...stored, claims, reservations },
      stored,
      modRevision: kv.modRevision,
      keyed,
      holds,
    };
  }

  async read(subnet: Subnet): Promise<PoolRecord | undefined> {
    const snap = await this.io.read(
      [this.keys.config(subnet)],
      [this.range(this.keys.claimPrefix(subnet)), this.range(this.keys.holdPrefix(subnet))],
    );
    const p = this.poolFrom(subnet, [snap]);
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

  async claimsOf(hostId: string): Promise<ClaimRecord[]> {
    const subnets = await this.listSubnets();
    if (subnets.length === 0) return [];
    const snap = await this.io.read(subnets.flatMap((s) => [this.keys.config(s), this.keys.claim(s, hostId)]));
    return subnets.flatMap((s) => this.poolFrom(s, [snap], hostId)?.config.claims ?? []);
  }

  async isHeld(subnet: Subnet, address: string): Promise<boolean> {
    const start = this.keys.holdsOf(subnet, address);
    const [count, config] = await Promise.all([
      this.io.readRange(start, prefixEnd(start), { countOnly: true }),
      this.io.read([this.keys.config(subnet)]),
    ]);
    if (count.count > 0) return true;
    const kv = config.kvs.get(this.keys.config(subnet));
    if (!kv) return false;
    const r = decodeConfig(kv.value, this.keys.config(subnet)).reservations.find((x) => x.address === address);
    return r !== undefined && Object.keys(legacyHolders(r)).length > 0;
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

  /** A host's own keys of a pool: its claim key and its hold key of every reservation (and of `more`). */
  private ownKeys(subnet: Subnet, hostId: string, stored: PoolConfig | undefined, more: string[]): string[] {
    const addresses = new Set([...(stored?.reservations.map((r) => r.address) ?? []), ...more]);
    return [this.keys.claim(subnet, hostId), ...[...addresses].map((a) => this.keys.hold(subnet, a, hostId))];
  }

  /**
   * The writes of a decision. The config key is written only when what it stores changed (its shared part, or an
   * older version's per-host entries moving out); a host's claim key only when its claims changed (or move out of
   * the config), left [] by its last claim (see the class comment); a hold key only when its count changed, and
   * deleted at 0. In a host's scope, every own key written is compared as read.
   */
  private addWrites(
    subnet: Subnet,
    pool: StoredPool | undefined,
    decided: PoolConfig,
    w: Write,
    own?: { hostId: string; revision: (key: string) => string | undefined },
  ): void {
    const onlyHost = own?.hostId;
    let next = decided;
    if (onlyHost !== undefined && pool) {
      // A host's own change cannot take shared reservations away: the others' holds were not read.
      const left = pool.config.reservations.filter((r) => !decided.reservations.some((n) => n.address === r.address));
      next = { ...decided, reservations: [...decided.reservations, ...left.map((r) => ({ ...r, holders: {} }))] };
    }
    const compareOwn = (key: string): void => {
      if (own !== undefined && !w.expect.some((e) => e.key === key))
        w.expect.push({ key, modRevision: own.revision(key) });
    };
    // Holds: per address and host, the count before and after.
    const legacy = new Map((pool?.stored.reservations ?? []).map((r) => [r.address, legacyHolders(r)]));
    const beforeRes = new Map((pool?.config.reservations ?? []).map((r) => [r.address, r.holders]));
    const afterRes = new Map(next.reservations.map((r) => [r.address, r.holders]));
    for (const address of new Set([...beforeRes.keys(), ...afterRes.keys()])) {
      const before = beforeRes.get(address) ?? {};
      const after = afterRes.get(address) ?? {};
      const left = legacy.get(address) ?? {};
      for (const hostId of new Set([...Object.keys(before), ...Object.keys(after), ...Object.keys(left)])) {
        if (onlyHost !== undefined && hostId !== onlyHost) continue;
        const was = before[hostId] ?? 0;
        const now = after[hostId] ?? 0;
        const moving = left[hostId] !== undefined && (onlyHost === hostId || was !== now);
        if (was === now && !moving) continue;
        delete left[hostId];
        const key = this.keys.hold(subnet, address, hostId);
        compareOwn(key);
        if (now > 0) w.puts.push({ key, value: JSON.stringify({ refs: now }) });
        else if (pool?.holds.get(address)?.has(hostId)) (w.deletes ??= []).push(key);
      }
    }
    const config: PoolConfig = {
      ...next,
      claims: onlyHost === undefined ? [] : (pool?.stored.claims.filter((c) => c.hostId !== onlyHost) ?? []),
      reservations: next.reservations.map((r) => ({
        ...r,
        holders: { ...(legacy.get(r.address) ?? {}), [KEYED_HOLDERS]: 1 },
      })),
    };
    if (!pool || canonical(config) !== canonical(pool.stored))
      w.puts.push({ key: this.keys.config(subnet), value: JSON.stringify(config) });
    const before = byHost(pool?.config.claims ?? []);
    const after = byHost(next.claims);
    for (const hostId of new Set([...before.keys(), ...after.keys()])) {
      const mine = after.get(hostId) ?? [];
      const migrating = !pool?.keyed.has(hostId) && (before.get(hostId)?.length ?? 0) > 0;
      if (!migrating && canonical(mine) === canonical(before.get(hostId) ?? [])) continue;
      if (onlyHost !== undefined && hostId !== onlyHost)
        throw new Error(`a change in the scope of host ${onlyHost} touched the claims of ${hostId}`);
      const key = this.keys.claim(subnet, hostId);
      compareOwn(key);
      w.puts.push({ key, value: JSON.stringify(mine) });
    }
  }

  update<T>(
    what: string,
    subnet: Subnet,
    decide: (tx: PoolTxn) => Promise<PoolDecision<T>> | PoolDecision<T>,
    options: PoolUpdateOptions = {},
  ): Promise<T> {
    const configKey = this.keys.config(subnet);
    const indexKey = this.keys.index();
    const prefetchedAddresses = options.addresses ?? [];
    const prefetched = prefetchedAddresses.map((a) => this.keys.addr(subnet, a));
    const claimRange = this.range(this.keys.claimPrefix(subnet));
    const holdRange = this.range(this.keys.holdPrefix(subnet));
    return this.io
      .retrying(what, async () => {
        let onlyHost = options.onlyHost;
        let snapshots: Snapshot[] = [];
        if (onlyHost !== undefined) {
          const firstKeys = this.ownKeys(subnet, onlyHost, undefined, prefetchedAddresses);
          const first = await this.io.read([indexKey, configKey, ...prefetched, ...firstKeys]);
          const stored = this.poolFrom(subnet, [first])?.stored;
          snapshots = [first];
          if (stored?.claims.some((c) => c.hostId !== onlyHost)) {
            // Claims embedded by a version from before the claim keys: moved out by a whole-pool write.
            onlyHost = undefined;
          } else {
            // The own hold keys of reservations the first read did not know of (a second read, own keys only).
            const more = this.ownKeys(subnet, onlyHost, stored, []).filter((k) => !firstKeys.includes(k));
            if (more.length > 0) snapshots.push(await this.io.read(more));
          }
        }
        if (onlyHost === undefined)
          snapshots = [await this.io.read([indexKey, configKey, ...prefetched], [claimRange, holdRange])];
        const snapshot = snapshots[0] as Snapshot;
        const index = this.indexFrom(snapshot);
        const pool = this.poolFrom(subnet, snapshots, onlyHost);
        // An own key as read (every one a host's change writes was read; one that was not is expected absent).
        const revision = (key: string): string | undefined =>
          snapshots.map((s) => s.kvs.get(key)).find((kv) => kv !== undefined)?.modRevision;
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
        const w: Write = { expect, puts: [], deletes: [], unchangedSince: [...blocksRead] };
        // A whole-pool decision read every host: no claim or hold key may have changed since (see the class comment).
        if (onlyHost === undefined)
          w.unchangedSince?.push(
            { ...claimRange, revision: snapshot.revision },
            { ...holdRange, revision: snapshot.revision },
          );
        const others = index.filter((s) => formatSubnet(s) !== formatSubnet(subnet));
        const indexRev = snapshot.kvs.get(indexKey)?.modRevision;
        if (d.next === 'delete') {
          if (onlyHost !== undefined) throw new Error(`${what}: a host's own change cannot delete the pool`);
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
          this.addWrites(subnet, pool, d.next, w, onlyHost === undefined ? undefined : { hostId: onlyHost, revision });
        }
        return (await this.io.write(w)) ? { value: d.result } : undefined;
      })
      .then((r) => r.value);
  }
}
