import { isDeepStrictEqual } from 'node:util';
import { FlatnetError, tooManyConflicts } from '../../src/errors.js';
import { ancestors, type Bitmap, bitmapFrom, type NodeRef } from '../../src/ipam/model/block.js';
import type { Cooling, ReleasedRecord } from '../../src/ipam/model/cooling-record.js';
import type { Assignment, AssignmentRead, PoolConfig } from '../../src/ipam/model/records.js';
import type {
  AddressRecords,
  BlockCommit,
  BlockRepository,
  BlockSnapshot,
  CommitCapacity,
  ConflictRetry,
  HostIndex,
  IndexedAddress,
  IpamStores,
  PoolDecision,
  PoolRecord,
  PoolRepository,
  PoolTxn,
  PoolUpdateOptions,
} from '../../src/ipam/ports.js';
import { formatSubnet, parseSubnet, type Subnet } from '../../src/net/address.js';
import { blockCommitCapacity } from '../../src/store/block-repository.js';

/**
 * The IPAM ports in memory, for unit tests of the services (CNI host-local's backend/testing/fake_store.go is
 * the model). A versioned map with compare-and-swap commits: every read records the revision it saw and a commit
 * fails when anything it read changed, as the etcd repositories do; no etcd behaviour beyond that is claimed.
 * Tests can make the next commits fail (injectConflicts) or run another writer between a read and its commit
 * (beforeNextCommit), and count reads and commits.
 */
interface Entry {
  value: unknown;
  rev: number;
}

/** A key as read, or no key under a prefix (optionally only the block keys of [from, to]) changed after a revision. */
type Compare =
  | { key: string; rev: number | undefined }
  | { prefix: string; notAfter: number; blocks?: { from: bigint; to: bigint } };

function inScope(c: { prefix: string; blocks?: { from: bigint; to: bigint } }, key: string): boolean {
  if (!key.startsWith(c.prefix)) return false;
  if (!c.blocks) return true;
  const b = BigInt(`0x${key.slice(c.prefix.length)}`);
  return b >= c.blocks.from && b <= c.blocks.to;
}

const MAX_ATTEMPTS = 20;
/** etcd's --max-txn-ops default: compares and writes of one txn, each counted on its own (the marker included). */
const MAX_TXN_OPS = 128;

export class MemoryStores implements IpamStores {
  private readonly data = new Map<string, Entry>();
  private rev = 0;
  private forcedConflicts = 0;
  private hooks: (() => Promise<void>)[] = [];
  readonly stats = { reads: 0, commits: 0, conflicts: 0 };
  private readonly listeners = new Set<(changed: string[]) => void>();

  readonly pools: PoolRepository;
  readonly blocks: BlockRepository;
  readonly addresses: AddressRecords;
  readonly hostIndex: HostIndex;
  /** What hostIndex.complete() answers: false plays a cluster whose upgrade has not filled the index yet. */
  indexComplete = true;
  readonly retry: ConflictRetry = {
    retrying: async <T>(what: string, attempt: (n: number) => Promise<T | undefined>): Promise<T> => {
      for (let n = 0; n < MAX_ATTEMPTS; n++) {
        const out = await attempt(n);
        if (out !== undefined) return out;
      }
      throw tooManyConflicts(what);
    },
  };

  constructor() {
    this.pools = new MemoryPoolRepository(this);
    this.blocks = new MemoryBlockRepository(this);
    this.hostIndex = this.makeHostIndex();
    this.addresses = {
      list: async (subnet) => {
        this.stats.reads++;
        const prefix = keys.addrPrefix(subnet);
        return [...this.data]
          .filter(([k]) => k.startsWith(prefix))
          .map(([k, e]) => ({ address: k.slice(prefix.length), read: e.value as AssignmentRead }));
      },
      pages: (subnet) => {
        const list = this.addresses.list(subnet);
        return (async function* () {
          const all = await list;
          for (let i = 0; i < all.length; i += 2) yield all.slice(i, i + 2);
        })();
      },
      readMany: async (subnet, addresses) => {
        const out = new Map<string, AssignmentRead>();
        for (const a of addresses) {
          const e = this.get(keys.addr(subnet, a));
          if (e) out.set(a, e.value as AssignmentRead);
        }
        return out;
      },
      count: async (subnet) => {
        this.stats.reads++;
        const prefix = keys.addrPrefix(subnet);
        return [...this.data.keys()].filter((k) => k.startsWith(prefix)).length;
      },
      listReleased: async (subnet) => {
        const prefix = keys.relPrefix(subnet);
        return this.entries(prefix).map(([k, e]) => ({
          address: k.slice(prefix.length),
          record: structuredClone(e.value as ReleasedRecord),
        }));
      },
      updateHeld: async (subnet, address, decide) => {
        const key = keys.addr(subnet, address);
        const e = this.get(key);
        const next = decide(e ? structuredClone(e.value as AssignmentRead) : undefined);
        if (next === undefined || e === undefined) return 'unchanged';
        const puts: [string, unknown][] = [[key, { assignment: structuredClone(next) }]];
        const deletes: string[] = [];
        const before = e.value as AssignmentRead;
        const was = before === 'unreadable' ? undefined : before.assignment;
        if (was === undefined || was.hostId !== next.hostId || was.since !== next.since || was.poolId !== next.poolId) {
          if (was !== undefined && was.hostId !== next.hostId) deletes.push(keys.hostAddr(was.hostId, subnet, address));
          puts.push([keys.hostAddr(next.hostId, subnet, address), { since: next.since, poolId: next.poolId }]);
        }
        const rev = await this.commit([{ key, rev: e.rev }], puts, deletes);
        return rev === undefined ? 'conflict' : 'written';
      },
    };
  }

  private makeHostIndex(): HostIndex {
    return {
      complete: async () => this.indexComplete,
      entries: (hostId) => {
        const prefix = keys.hostAddrPrefix(hostId);
        const entries = this.entries(prefix).map(([k, e]) => {
          const [subnet, address] = k.slice(prefix.length).split('|') as [string, string];
          return { subnet, address, ...(e.value as { since: string; poolId: string }) };
        });
        return (async function* () {
          for (let i = 0; i < entries.length; i += 2) yield entries.slice(i, i + 2);
        })();
      },
      count: async (hostId, subnet) =>
        this.entries(subnet === undefined ? keys.hostAddrPrefix(hostId) : `${keys.hostAddrPrefix(hostId)}${S(subnet)}|`)
          .length,
      fillStep: async () => {
        this.indexComplete = true;
        return 'complete' as const;
      },
      refill: async () => {
        this.indexComplete = false;
      },
      everyEntry: () => {
        const entries = this.entries('host/').map(([k, e]) => {
          const hostId = k.split('/')[1] as string;
          const [subnet, address] = k.slice(`host/${hostId}/`.length).split('|') as [string, string];
          return { hostId, subnet, address, ...(e.value as { since: string; poolId: string }) };
        });
        return (async function* () {
          for (let i = 0; i < entries.length; i += 2) yield entries.slice(i, i + 2);
        })();
      },
      dropStale: async (hostId: string, entries: readonly IndexedAddress[]) => {
        let n = 0;
        for (const e of entries) {
          const subnet = parseSubnet(e.subnet);
          const key = keys.hostAddr(hostId, subnet, e.address);
          const index = this.get(key);
          const rec = this.get(keys.addr(subnet, e.address));
          const read = rec?.value as AssignmentRead | undefined;
          if (index === undefined || read === 'unreadable' || (read !== undefined && read.assignment.hostId === hostId))
            continue;
          const ok = await this.commit(
            [
              { key, rev: index.rev },
              { key: keys.addr(subnet, e.address), rev: rec?.rev },
            ],
            [],
            [key],
          );
          if (ok !== undefined) n++;
        }
        return n;
      },
    };
  }

  /** Every host index entry as [host, subnet, address] (tests compare the index with the records). */
  hostIndexEntries(): string[] {
    return [...this.data.keys()].filter((k) => k.startsWith('host/')).sort();
  }

  /** Hears the keys of every commit (written or deleted), as an etcd watch would; returns the way to stop. */
  listen(fn: (changed: string[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The next n commits fail as if another writer had come first (nothing is written). */
  injectConflicts(n = 1): void {
    this.forcedConflicts += n;
  }

  /** Runs `write` (another host's work, say) after the next commit's reads and before its compare. */
  beforeNextCommit(write: () => Promise<void>): void {
    this.hooks.push(write);
  }

  /** Seeds an address key as another version or a broken writer left it. */
  putAssignment(subnet: Subnet, address: string, read: AssignmentRead): void {
    this.set(keys.addr(subnet, address), read);
  }

  assignment(subnet: Subnet, address: string): AssignmentRead | undefined {
    return this.data.get(keys.addr(subnet, address))?.value as AssignmentRead | undefined;
  }

  get(key: string): Entry | undefined {
    this.stats.reads++;
    return this.data.get(key);
  }

  /** A key's value without counting a read (the fakes' own bookkeeping). */
  peek(key: string): unknown {
    return this.data.get(key)?.value;
  }

  entries(prefix: string): [string, Entry][] {
    this.stats.reads++;
    return [...this.data].filter(([k]) => k.startsWith(prefix));
  }

  get revision(): number {
    return this.rev;
  }

  private set(key: string, value: unknown): void {
    this.data.set(key, { value, rev: ++this.rev });
  }

  /** One compare-and-swap: all compares hold, then the puts and deletes happen at one new revision. */
  async commit(
    compares: Compare[],
    puts: [string, unknown][],
    deletes: string[] = [],
    deletePrefixes: string[] = [],
    hintsOnly = false,
  ): Promise<number | undefined> {
    // EtcdIo refuses such a txn whole, before sending it (the +1s: its txn marker), as a flatnet bug.
    const writes = puts.length + deletes.length + deletePrefixes.length + 1;
    if (compares.length + 1 > MAX_TXN_OPS || writes > MAX_TXN_OPS)
      throw new FlatnetError(
        'internal',
        `A write of ${writes} operations and ${compares.length + 1} compares is over etcd's txn limits (a flatnet bug).`,
      );
    // Hint repairs are best effort and not what a test injects into.
    const hook = hintsOnly ? undefined : this.hooks.shift();
    if (hook) await hook();
    if (!hintsOnly && this.forcedConflicts > 0) {
      this.forcedConflicts--;
      this.stats.conflicts++;
      return undefined;
    }
    const holds = compares.every((c) =>
      'key' in c
        ? this.data.get(c.key)?.rev === c.rev
        : [...this.data].every(([k, e]) => !inScope(c, k) || e.rev <= c.notAfter),
    );
    if (!holds) {
      this.stats.conflicts++;
      return undefined;
    }
    if (!hintsOnly) this.stats.commits++;
    const rev = ++this.rev;
    const changed: string[] = [];
    for (const p of deletePrefixes)
      for (const k of [...this.data.keys()])
        if (k.startsWith(p)) {
          this.data.delete(k);
          changed.push(k);
        }
    for (const k of deletes) if (this.data.delete(k)) changed.push(k);
    for (const [k, value] of puts) {
      this.data.set(k, { value, rev });
      changed.push(k);
    }
    for (const fn of this.listeners) fn(changed);
    return rev;
  }
}

const S = (s: Subnet): string => formatSubnet(s);
export const keys = {
  index: 'index',
  pool: (s: Subnet) => `pool/${S(s)}/`,
  config: (s: Subnet) => `pool/${S(s)}/config`,
  blockPrefix: (s: Subnet) => `pool/${S(s)}/block/`,
  block: (s: Subnet, b: bigint) => `pool/${S(s)}/block/${b.toString(16)}`,
  node: (s: Subnet, r: NodeRef) => `pool/${S(s)}/sum/${r.level}/${r.index.toString(16)}`,
  addrPrefix: (s: Subnet) => `pool/${S(s)}/addr/`,
  addr: (s: Subnet, a: string) => `pool/${S(s)}/addr/${a}`,
  coolPrefix: (s: Subnet) => `pool/${S(s)}/cool/`,
  cool: (s: Subnet, b: bigint) => `pool/${S(s)}/cool/${b.toString(16)}`,
  relPrefix: (s: Subnet) => `pool/${S(s)}/rel/`,
  rel: (s: Subnet, a: string) => `pool/${S(s)}/rel/${a}`,
  name: (s: Subnet, n: string) => `pool/${S(s)}/name/${n}`,
  hostAddrPrefix: (h: string) => `host/${h}/`,
  hostAddr: (h: string, s: Subnet, a: string) => `host/${h}/${S(s)}|${a}`,
  claimPrefix: (s: Subnet) => `pool/${S(s)}/claim/`,
  claim: (s: Subnet, h: string) => `pool/${S(s)}/claim/${h}`,
  holdPrefix: (s: Subnet) => `pool/${S(s)}/hold/`,
  holdsOf: (s: Subnet, a: string) => `pool/${S(s)}/hold/${a}/`,
  hold: (s: Subnet, a: string, h: string) => `pool/${S(s)}/hold/${a}/${h}`,
};

const cloneConfig = (c: PoolConfig): PoolConfig => structuredClone(c);

/**
 * Pools kept as etcd keeps them: the shared config in one entry, each host's claims and each host's hold of a
 * reservation in entries of their own. A whole-pool update compares every claim and hold entry; a host's own
 * update (onlyHost) compares only the config and that host's entries, so two hosts' own updates never conflict.
 */
class MemoryPoolRepository implements PoolRepository {
  constructor(private readonly m: MemoryStores) {}

  private index(): { subnets: Subnet[]; rev: number | undefined } {
    const e = this.m.get(keys.index);
    return { subnets: ((e?.value as string[] | undefined) ?? []).map((s) => parseSubnet(s)), rev: e?.rev };
  }

  async listSubnets(): Promise<Subnet[]> {
    return this.index().subnets;
  }

  /** The logical config (claims and holders merged), and every entry read with its revision. */
  private load(
    subnet: Subnet,
    onlyHost?: string,
  ): { config: PoolConfig | undefined; rev: number | undefined; own: Map<string, number | undefined> } {
    const cfg = this.m.get(keys.config(subnet));
    const own = new Map<string, number | undefined>();
    if (!cfg) return { config: undefined, rev: undefined, own };
    const config = cloneConfig(cfg.value as PoolConfig);
    const visible = (h: string): boolean => onlyHost === undefined || h === onlyHost;
    const claimPrefix = keys.claimPrefix(subnet);
    for (const [k, e] of this.m.entries(claimPrefix))
      if (visible(k.slice(claimPrefix.length))) config.claims.push(...structuredClone(e.value as PoolConfig['claims']));
    for (const r of config.reservations) {
      const prefix = keys.holdsOf(subnet, r.address);
      for (const [k, e] of this.m.entries(prefix))
        if (visible(k.slice(prefix.length))) r.holders[k.slice(prefix.length)] = e.value as number;
    }
    if (onlyHost !== undefined) {
      own.set(keys.claim(subnet, onlyHost), this.m.get(keys.claim(subnet, onlyHost))?.rev);
      for (const r of config.reservations) {
        const k = keys.hold(subnet, r.address, onlyHost);
        own.set(k, this.m.get(k)?.rev);
      }
    }
    return { config, rev: cfg.rev, own };
  }

  async read(subnet: Subnet): Promise<PoolRecord | undefined> {
    const { config } = this.load(subnet);
    return config ? { subnet, config } : undefined;
  }

  async readAll(): Promise<PoolRecord[]> {
    const out: PoolRecord[] = [];
    for (const s of this.index().subnets) {
      const p = await this.read(s);
      if (p) out.push(p);
    }
    return out;
  }

  async claimsOf(hostId: string): Promise<PoolConfig['claims']> {
    return this.index().subnets.flatMap((s) => this.load(s, hostId).config?.claims ?? []);
  }

  async isHeld(subnet: Subnet, address: string): Promise<boolean> {
    return this.m.entries(keys.holdsOf(subnet, address)).length > 0;
  }

  update<T>(
    what: string,
    subnet: Subnet,
    decide: (tx: PoolTxn) => Promise<PoolDecision<T>> | PoolDecision<T>,
    options: PoolUpdateOptions = {},
  ): Promise<T> {
    const onlyHost = options.onlyHost;
    return this.m.retry
      .retrying(what, async () => {
        const index = this.index();
        const read = this.load(subnet, onlyHost);
        const compares: Compare[] = [{ key: keys.config(subnet), rev: read.rev }];
        if (onlyHost === undefined)
          compares.push(
            { prefix: keys.claimPrefix(subnet), notAfter: this.m.revision },
            { prefix: keys.holdPrefix(subnet), notAfter: this.m.revision },
          );
        const tx: PoolTxn = {
          current: read.config,
          index: index.subnets,
          assignment: async (address) => {
            const e = this.m.get(keys.addr(subnet, address));
            compares.push({ key: keys.addr(subnet, address), rev: e?.rev });
            return e?.value as AssignmentRead | undefined;
          },
          blocks: async (within) => {
            const out = new Map<bigint, Bitmap>();
            const prefix = keys.blockPrefix(subnet);
            const scope = {
              prefix,
              notAfter: this.m.revision,
              ...(within ? { blocks: { from: within.start >> 8n, to: within.end >> 8n } } : {}),
            };
            compares.push(scope);
            for (const [k, e] of this.m.entries(prefix))
              if (inScope(scope, k)) out.set(BigInt(`0x${k.slice(prefix.length)}`), Uint8Array.from(e.value as Bitmap));
            return out;
          },
        };
        const d = await decide(tx);
        if (d.next === undefined) return { value: d.result };
        const others = index.subnets.filter((s) => S(s) !== S(subnet)).map(S);
        if (d.next === 'delete') {
          if (onlyHost !== undefined) throw new Error(`${what}: a host's own change cannot delete the pool`);
          if (!read.config) return (await this.m.commit(compares, [])) !== undefined ? { value: d.result } : undefined;
          compares.push({ key: keys.index, rev: index.rev });
          const ok = await this.m.commit(compares, [[keys.index, others]], [], [keys.pool(subnet)]);
          return ok !== undefined ? { value: d.result } : undefined;
        }
        let next = cloneConfig(d.next);
        if (onlyHost !== undefined && read.config) {
          // As in etcd: a host's own change never takes a shared reservation away.
          const left = read.config.reservations.filter((r) => !next.reservations.some((n) => n.address === r.address));
          next = { ...next, reservations: [...next.reservations, ...left.map((r) => ({ ...r, holders: {} }))] };
        }
        const puts: [string, unknown][] = [];
        const deletes: string[] = [];
        const touch = (k: string): void => {
          if (onlyHost !== undefined) compares.push({ key: k, rev: read.own.get(k) });
        };
        const hosts = new Set([...(read.config?.claims ?? []), ...next.claims].map((c) => c.hostId));
        for (const h of hosts) {
          const before = (read.config?.claims ?? []).filter((c) => c.hostId === h);
          const after = next.claims.filter((c) => c.hostId === h);
          if (JSON.stringify(before) === JSON.stringify(after)) continue;
          if (onlyHost !== undefined && h !== onlyHost) throw new Error(`${what}: touched the claims of ${h}`);
          touch(keys.claim(subnet, h));
          puts.push([keys.claim(subnet, h), after]);
        }
        const before = new Map((read.config?.reservations ?? []).map((r) => [r.address, r.holders]));
        const after = new Map(next.reservations.map((r) => [r.address, r.holders]));
        for (const a of new Set([...before.keys(), ...after.keys()])) {
          const b = before.get(a) ?? {};
          const n = after.get(a) ?? {};
          for (const h of new Set([...Object.keys(b), ...Object.keys(n)])) {
            if ((b[h] ?? 0) === (n[h] ?? 0)) continue;
            touch(keys.hold(subnet, a, h));
            if ((n[h] ?? 0) > 0) puts.push([keys.hold(subnet, a, h), n[h]]);
            else deletes.push(keys.hold(subnet, a, h));
          }
        }
        const shared: PoolConfig = {
          ...next,
          claims: [],
          reservations: next.reservations.map((r) => ({ ...r, holders: {} })),
        };
        // Written only when its shared part changed: each write fails every other reader's compare, as in etcd.
        const stored = this.m.peek(keys.config(subnet));
        if (!isDeepStrictEqual(stored, shared)) puts.push([keys.config(subnet), shared]);
        if (!read.config) {
          compares.push({ key: keys.index, rev: index.rev });
          puts.push([keys.index, [...others, S(subnet)].sort()]);
        }
        return (await this.m.commit(compares, puts, deletes)) !== undefined ? { value: d.result } : undefined;
      })
      .then((r) => r.value);
  }
}

interface Revisions {
  config: number;
  block: number | undefined;
  nodes: (number | undefined)[];
  addresses: Map<string, number | undefined>;
  released: Map<string, number | undefined>;
}

class MemoryBlockRepository implements BlockRepository {
  private readonly revisions = new WeakMap<BlockSnapshot, Revisions>();
  private readonly written = new Map<string, BlockSnapshot>();

  constructor(private readonly m: MemoryStores) {}

  async read(subnet: Subnet, block: bigint, addresses: string[] = []): Promise<BlockSnapshot | undefined> {
    const cfg = this.m.get(keys.config(subnet));
    if (!cfg) return undefined;
    const b = this.m.get(keys.block(subnet, block));
    const refs = ancestors(block, subnet.hostBits);
    const nodes = refs.map((ref) => this.m.get(keys.node(subnet, ref)));
    const assignments = new Map<string, AssignmentRead>();
    const addrRevs = new Map<string, number | undefined>();
    const released = new Map<string, ReleasedRecord>();
    const relRevs = new Map<string, number | undefined>();
    for (const a of addresses) {
      const e = this.m.get(keys.addr(subnet, a));
      addrRevs.set(a, e?.rev);
      if (e) assignments.set(a, e.value as AssignmentRead);
      const r = this.m.get(keys.rel(subnet, a));
      relRevs.set(a, r?.rev);
      if (r) released.set(a, structuredClone(r.value as ReleasedRecord));
    }
    const cool = this.m.get(keys.cool(subnet, block));
    const view: BlockSnapshot = {
      subnet,
      config: cloneConfig(cfg.value as PoolConfig),
      block,
      bits: bitmapFrom(b?.value as Bitmap | undefined),
      nodes: refs.map((ref, i) => ({ ref, bits: bitmapFrom(nodes[i]?.value as Bitmap | undefined) })),
      assignments,
      cooling: new Map((cool?.value as Cooling | undefined) ?? []),
      released,
    };
    this.revisions.set(view, {
      config: cfg.rev,
      block: b?.rev,
      nodes: nodes.map((n) => n?.rev),
      addresses: addrRevs,
      released: relRevs,
    });
    return view;
  }

  capacity(subnet: Subnet): CommitCapacity {
    return blockCommitCapacity(subnet);
  }

  takeCached(subnet: Subnet, block: bigint): BlockSnapshot | undefined {
    const k = keys.block(subnet, block);
    const v = this.written.get(k);
    this.written.delete(k);
    return v;
  }

  async readNode(subnet: Subnet, ref: NodeRef): Promise<Bitmap> {
    return bitmapFrom(this.m.get(keys.node(subnet, ref))?.value as Bitmap | undefined);
  }

  async readAll(subnet: Subnet): Promise<Map<bigint, Bitmap>> {
    const prefix = keys.blockPrefix(subnet);
    return new Map(
      this.m
        .entries(prefix)
        .map(([k, e]) => [BigInt(`0x${k.slice(prefix.length)}`), Uint8Array.from(e.value as Bitmap)]),
    );
  }

  async readCooling(subnet: Subnet): Promise<Map<bigint, Cooling>> {
    const prefix = keys.coolPrefix(subnet);
    return new Map(
      this.m.entries(prefix).map(([k, e]) => [BigInt(`0x${k.slice(prefix.length)}`), new Map(e.value as Cooling)]),
    );
  }

  async readName(subnet: Subnet, name: string): Promise<string | undefined> {
    return this.m.get(keys.name(subnet, name))?.value as string | undefined;
  }

  private revs(view: BlockSnapshot): Revisions {
    const r = this.revisions.get(view);
    if (!r) throw new Error('MemoryBlockRepository: a snapshot it did not read');
    return r;
  }

  private nodeWrites(
    view: BlockSnapshot,
    revs: Revisions,
    nodes: readonly (Bitmap | undefined)[],
    compares: Compare[],
    puts: [string, unknown][],
  ): void {
    nodes.forEach((bits, i) => {
      const node = view.nodes[i];
      if (!bits || !node) return;
      compares.push({ key: keys.node(view.subnet, node.ref), rev: revs.nodes[i] });
      puts.push([keys.node(view.subnet, node.ref), Uint8Array.from(bits)]);
    });
  }

  async commit(view: BlockSnapshot, change: BlockCommit): Promise<BlockSnapshot | undefined> {
    const revs = this.revs(view);
    const { subnet } = view;
    const compares: Compare[] = [
      { key: keys.config(subnet), rev: revs.config },
      { key: keys.block(subnet, view.block), rev: revs.block },
    ];
    const puts: [string, unknown][] = [[keys.block(subnet, view.block), Uint8Array.from(change.bits)]];
    this.nodeWrites(view, revs, change.nodes, compares, puts);
    for (const c of change.create ?? []) {
      compares.push({ key: keys.addr(subnet, c.address), rev: undefined });
      puts.push([keys.addr(subnet, c.address), { assignment: structuredClone<Assignment>(c.assignment) }]);
      puts.push([
        keys.hostAddr(c.assignment.hostId, subnet, c.address),
        { since: c.assignment.since, poolId: c.assignment.poolId },
      ]);
    }
    const deletes: string[] = [];
    for (const a of change.remove ?? []) {
      if (!revs.addresses.has(a)) throw new Error(`MemoryBlockRepository: ${a} removed without being read`);
      compares.push({ key: keys.addr(subnet, a), rev: revs.addresses.get(a) });
      deletes.push(keys.addr(subnet, a));
      const held = view.assignments.get(a);
      if (held !== undefined && held !== 'unreadable') deletes.push(keys.hostAddr(held.assignment.hostId, subnet, a));
    }
    if (change.cooling !== undefined) {
      if (change.cooling.size > 0) puts.push([keys.cool(subnet, view.block), new Map(change.cooling)]);
      else deletes.push(keys.cool(subnet, view.block));
    }
    for (const r of change.release ?? []) puts.push([keys.rel(subnet, r.address), structuredClone(r.record)]);
    for (const a of change.dropReleased ?? []) {
      if (change.release?.some((r) => r.address === a)) continue;
      const rev = revs.released.get(a);
      if (rev !== undefined) compares.push({ key: keys.rel(subnet, a), rev });
      deletes.push(keys.rel(subnet, a));
    }
    for (const n of change.names ?? []) puts.push([keys.name(subnet, n.name), n.address]);
    const rev = await this.m.commit(compares, puts, deletes);
    if (rev === undefined) return undefined;
    const after: BlockSnapshot = {
      ...view,
      bits: change.bits,
      nodes: view.nodes.map((n, i) => (change.nodes[i] === undefined ? n : { ...n, bits: change.nodes[i] })),
      assignments: new Map(),
      cooling: change.cooling ?? view.cooling,
      released: new Map(),
    };
    this.revisions.set(after, {
      config: revs.config,
      block: rev,
      nodes: revs.nodes.map((r, i) => (change.nodes[i] === undefined ? r : rev)),
      addresses: new Map(),
      released: new Map(),
    });
    this.written.set(keys.block(subnet, view.block), after);
    return after;
  }

  async writeHints(view: BlockSnapshot, nodes: readonly (Bitmap | undefined)[]): Promise<void> {
    const compares: Compare[] = [];
    const puts: [string, unknown][] = [];
    this.nodeWrites(view, this.revs(view), nodes, compares, puts);
    if (puts.length > 0) await this.m.commit(compares, puts, [], [], true);
  }
}
