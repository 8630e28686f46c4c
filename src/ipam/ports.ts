import type { Subnet } from '../net/address.js';
import type { Interval } from '../net/intervals.js';
import type { Bitmap, NodeRef } from './model/block.js';
import type { Cooling, ReleasedRecord } from './model/cooling-record.js';
import type { Assignment, AssignmentRead, ClaimRecord, PoolConfig } from './model/records.js';

/**
 * What the IPAM services need from storage, in their own terms. store/ implements these over etcd and
 * test/fakes/ in memory. Keys, revisions, compares and txns stay behind them: a service reads, decides with the
 * pure rules of core/, and hands back what changed; the repository derives the compares from what was read
 * (as etcd's concurrency/stm.go does from its read set) and reports a conflict as "undefined", never as an error.
 */

/** A pool as read. */
export interface PoolRecord {
  subnet: Subnet;
  config: PoolConfig;
}

/** One attempt of a read-decide-write on a pool. Everything read through it must be unchanged at commit. */
export interface PoolTxn {
  /** The pool's config; undefined = the pool does not exist (yet). */
  readonly current: PoolConfig | undefined;
  /** Every pool's subnet. Creating or deleting a pool fails when another create or delete came first. */
  readonly index: readonly Subnet[];
  /** The container assignment of one address of this pool (undefined = none). */
  assignment(address: string): Promise<AssignmentRead | undefined>;
  /**
   * The stored block bitmaps of this pool (a block not in the map is all free); the commit fails when one of them
   * changed since. With `within`, only the blocks holding part of that interval are read and compared, so that
   * allocations elsewhere in the pool do not fail an idle check of one range.
   */
  blocks(within?: Interval): Promise<Map<bigint, Bitmap>>;
}

export interface PoolDecision<T> {
  result: T;
  /** The config to store; 'delete' drops the pool with all its keys; absent = write nothing. */
  next?: PoolConfig | 'delete';
}

/**
 * How an update reads and commits. `addresses`: assignments `decide` will likely ask for, read with the first read.
 *
 * `onlyHost`: a host's own change (its claims, its gateway/aux holds), the common path of RequestPool, ReleasePool
 * and RequestAddress of a gateway. `current` then carries that host's claims and holders only, and the commit
 * compares the shared config and that host's own keys, never another host's: two hosts' own changes never
 * conflict. Such a decision may add to the shared config (a range, a reservation, a declaration) but never take
 * from it: a reservation or range it leaves out stays (it cannot know whether other hosts still use it), and
 * 'delete' is refused. Dropping what nobody uses is a whole-pool update (tidy), which reads every host.
 */
export interface PoolUpdateOptions {
  addresses?: string[];
  onlyHost?: string;
}

export interface PoolRepository {
  listSubnets(): Promise<Subnet[]>;
  read(subnet: Subnet): Promise<PoolRecord | undefined>;
  readAll(): Promise<PoolRecord[]>;
  /** One host's claims on every pool, reading only that host's keys (and the configs of older versions). */
  claimsOf(hostId: string): Promise<ClaimRecord[]>;
  /** Whether any host holds the gateway/aux reservation of this address (a count, not a listing of holders). */
  isHeld(subnet: Subnet, address: string): Promise<boolean>;
  /**
   * Runs `decide` on a consistent read and commits its decision when nothing it read changed meanwhile, else runs
   * it again (bounded, then 'unavailable').
   */
  update<T>(
    what: string,
    subnet: Subnet,
    decide: (tx: PoolTxn) => Promise<PoolDecision<T>> | PoolDecision<T>,
    options?: PoolUpdateOptions,
  ): Promise<T>;
}

/** A block with what decides about it: its pool's config, the summary path above it, some assignments. */
export interface BlockSnapshot {
  readonly subnet: Subnet;
  readonly config: PoolConfig;
  readonly block: bigint;
  readonly bits: Bitmap;
  /** The summary nodes above the block, lowest level first. */
  readonly nodes: readonly { readonly ref: NodeRef; readonly bits: Bitmap }[];
  /** The assignments of the addresses the read asked for; an address not in the map has none. */
  readonly assignments: ReadonlyMap<string, AssignmentRead>;
  /** The block's cooling entries (released offsets not yet reusable or not yet cleared). */
  readonly cooling: Cooling;
  /** The released records of the addresses the read asked for (undefined = none or unreadable). */
  readonly released: ReadonlyMap<string, ReleasedRecord>;
}

export interface BlockCommit {
  bits: Bitmap;
  /** New summary node bitmaps, aligned with the snapshot's nodes; undefined = unchanged. */
  nodes: readonly (Bitmap | undefined)[];
  /** New assignments; the commit fails when one of these addresses got assigned meanwhile. */
  create?: { address: string; assignment: Assignment }[];
  /** Assignments to delete: each one read in the snapshot, and the commit fails when it changed since. */
  remove?: string[];
  /** The block's cooling entries after the change (absent = unchanged). */
  cooling?: Cooling;
  /** Released records to write (the address was freed and cools). */
  release?: { address: string; record: ReleasedRecord }[];
  /**
   * Released records to delete (reused or expired). Released records change only in block txns, so the block's
   * compare covers them; one read in the snapshot is compared as read.
   */
  dropReleased?: string[];
  /** Name index entries to point at an address (the name's latest address in the pool). */
  names?: { name: string; address: string }[];
}

/**
 * What one commit of a block may carry: etcd's txn limits as the store spends them on its keys. The services split
 * their multi-address work by it and never see etcd's numbers.
 */
export interface CommitCapacity {
  /** Addresses one commit may free (each with its released record, name and index entries). */
  removals: number;
  /**
   * For an allocation of addresses, named or not: what the i-th address costs and what one commit may spend in
   * all (core's OpsBudget; dropping an expired released record costs 1 more).
   */
  creations(named: readonly boolean[]): { costOf: (i: number) => number; total: number };
}

export interface BlockRepository {
  /** See CommitCapacity. */
  capacity(subnet: Subnet): CommitCapacity;
  /** Config, block, its summary path and the given addresses' assignments at one revision; undefined = no pool. */
  read(subnet: Subnet, block: bigint, addresses?: string[]): Promise<BlockSnapshot | undefined>;
  /**
   * The block as this process last committed it, handed to one caller (its commit caches it again). Another
   * host's write makes it stale; its commit then reports a conflict.
   */
  takeCached(subnet: Subnet, block: bigint): BlockSnapshot | undefined;
  readNode(subnet: Subnet, ref: NodeRef): Promise<Bitmap>;
  /** Every stored block of the pool (absent blocks are all free). */
  readAll(subnet: Subnet): Promise<Map<bigint, Bitmap>>;
  /** Every block's cooling entries (blocks without any are left out); read at exhaustion only. */
  readCooling(subnet: Subnet): Promise<Map<bigint, Cooling>>;
  /** The address the name index points at for a container name in the pool, a hint checked by the caller. */
  readName(subnet: Subnet, name: string): Promise<string | undefined>;
  /** Compare-and-swap of the block against the snapshot: the block as written, or undefined on a conflict. */
  commit(snapshot: BlockSnapshot, change: BlockCommit): Promise<BlockSnapshot | undefined>;
  /** Summary nodes only (hint repair), against the snapshot; best effort, a conflict is ignored. */
  writeHints(snapshot: BlockSnapshot, nodes: readonly (Bitmap | undefined)[]): Promise<void>;
}

/** What a host hears from a PoolWatch. */
export interface PoolWatchEvents {
  /** The shared config of this pool changed (ranges, reservations, gateway) or the pool went. */
  changed(subnet: Subnet): void;
  /** Changes may have been missed (the watch's revision was compacted away): read again what was learned by it. */
  resync(): void;
}

/**
 * How a host learns what other hosts changed in the pools it uses, instead of reading them on a timer: a watch
 * that, after a lost connection, resumes from the last revision it saw (nothing missed, nothing read twice).
 */
export interface PoolWatch {
  /** Watches exactly these pools from now on (those no longer listed are let go). */
  follow(subnets: readonly Subnet[]): void;
  close(): Promise<void>;
}

/** The container assignments of a pool, for listing and counting. */
export interface AddressRecords {
  list(subnet: Subnet): Promise<{ address: string; read: AssignmentRead }[]>;
  /** The pool's records a page at a time (memory: one page, whatever the pool's size). */
  pages(subnet: Subnet): AsyncIterable<{ address: string; read: AssignmentRead }[]>;
  /** The records of some addresses of a pool (absent = none), read at one revision. */
  readMany(subnet: Subnet, addresses: readonly string[]): Promise<Map<string, AssignmentRead>>;
  count(subnet: Subnet): Promise<number>;
  /** Released (cooling or parked) addresses' records; unreadable ones are left out. */
  listReleased(subnet: Subnet): Promise<{ address: string; record: ReleasedRecord }[]>;
  /**
   * One compare-and-swap on a held address's record: `decide` gets it as read (undefined = none) and returns
   * the record to write, or undefined to leave it. 'conflict' when it changed meanwhile.
   */
  updateHeld(
    subnet: Subnet,
    address: string,
    decide: (read: AssignmentRead | undefined) => Assignment | undefined,
  ): Promise<'written' | 'unchanged' | 'conflict'>;
}

/** An address a host's index says it holds: a hint, the address record decides. */
export interface IndexedAddress {
  /** Canonical CIDR of the pool. */
  subnet: string;
  address: string;
  since: string;
  poolId: string;
}

/**
 * The per-host index of held addresses (store/keys.ts: host/<hostId>/addr/...): kept in the txns that write the
 * address records, so that reading what one host holds costs what it holds.
 */
export interface HostIndex {
  /** Whether every address record has its index entry; false while an upgrade from an older layout fills it in. */
  complete(): Promise<boolean>;
  /** One host's index entries (conflict records: CONFLICT_HOLDER's), a page at a time. */
  entries(hostId: string): AsyncIterable<IndexedAddress[]>;
  /** How many entries a host has (in one pool, or in all), counted by etcd without reading them. */
  count(hostId: string, subnet?: Subnet): Promise<number>;
  /**
   * One step of the backfill of records written by older versions; 'waiting' while an older version is alive
   * (it writes records without index entries), 'complete' once the index is.
   */
  fillStep(): Promise<'complete' | 'progress' | 'waiting' | 'conflict'>;
  /** Drops index entries of the host that no record backs (checked in the same txn). Returns how many went. */
  dropStale(hostId: string, entries: readonly IndexedAddress[]): Promise<number>;
  /** Every host's entries, a page at a time (fsck only: this costs what the cluster holds). */
  everyEntry(): AsyncIterable<(IndexedAddress & { hostId: string })[]>;
  /** Starts a new backfill pass (fsck --repair of entries found missing): readers list the pools until it is done. */
  refill(): Promise<void>;
}

/** The bounded loop around one read-decide-write: runs attempts until one returns a value (undefined = conflict). */
export interface ConflictRetry {
  retrying<T>(what: string, attempt: (n: number) => Promise<T | undefined>): Promise<T>;
}

/** Everything the IPAM services are built on. */
export interface IpamStores {
  pools: PoolRepository;
  blocks: BlockRepository;
  addresses: AddressRecords;
  hostIndex: HostIndex;
  retry: ConflictRetry;
}
