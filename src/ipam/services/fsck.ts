import { addressAt, formatSubnet, offsetIn, type Subnet } from '../../net/address.js';
import { contains } from '../../net/intervals.js';
import { FANOUT } from '../model/block.js';
import type { Bitmap } from '../model/block.js';
import type { AssignmentRead, PoolConfig } from '../model/records.js';
import { bitOf, blockOf, blockSpan, getBit, withBit } from '../core/bitmap.js';
import { summaryEdit } from '../core/block-ops.js';
import { allocatable } from '../core/pool-rules.js';
import type { IpamStores } from '../ports.js';
import { blockState, editCommit } from './allocation-service.js';

/**
 * `flatnet fsck`: the pools' stored state checked against itself. A block's bits and its address records are
 * written in one txn, so any disagreement is damage (a hand edit, a restore from an old backup, a bug):
 *  - bit-without-record: the address can never be handed out again (a leak); repair clears the bit;
 *  - record-without-bit: the allocator may pick the address and then fail its commit; repair sets the bit;
 *  - unreadable-record: the address stays used; `flatnet ip release ADDRESS` frees it;
 *  - record-outside-ranges / claim-of-unknown-host: reported only (an operator decides);
 *  - index-missing (a record without its host index entry) / index-stale (an entry no record backs), once the host
 *    index is complete: repair drops stale entries and starts a new backfill pass for missing ones.
 */

export type FsckKind =
  | 'bit-without-record'
  | 'record-without-bit'
  | 'unreadable-record'
  | 'record-outside-ranges'
  | 'claim-of-unknown-host'
  | 'index-missing'
  | 'index-stale';

export interface FsckFinding {
  subnet: string;
  kind: FsckKind;
  /** The address, or for a claim the host id. */
  what: string;
  /** For the index findings: the host whose index entry is missing or stale. */
  hostId?: string;
}

/** Pure: the findings of one pool from its config, its stored blocks and its records. */
export function checkPool(
  subnet: Subnet,
  config: PoolConfig,
  blocks: ReadonlyMap<bigint, Bitmap>,
  records: readonly { address: string; read: AssignmentRead }[],
  knownHosts?: ReadonlySet<string>,
): FsckFinding[] {
  const s = formatSubnet(subnet);
  const out: FsckFinding[] = [];
  const recorded = new Set<bigint>();
  const all = allocatable(config, subnet);
  for (const r of records) {
    const offset = offsetIn(subnet, r.address);
    recorded.add(offset);
    const bits = blocks.get(blockOf(offset));
    if (!bits || !getBit(bits, bitOf(offset))) out.push({ subnet: s, kind: 'record-without-bit', what: r.address });
    if (r.read === 'unreadable') out.push({ subnet: s, kind: 'unreadable-record', what: r.address });
    if (!contains(all, offset)) out.push({ subnet: s, kind: 'record-outside-ranges', what: r.address });
  }
  for (const [block, bits] of [...blocks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    for (let i = 0; i < FANOUT; i++) {
      const offset = blockSpan(block).start + BigInt(i);
      if (getBit(bits, i) && !recorded.has(offset))
        out.push({ subnet: s, kind: 'bit-without-record', what: addressAt(subnet, offset) });
    }
  }
  if (knownHosts) {
    for (const h of new Set(config.claims.map((c) => c.hostId))) {
      if (!knownHosts.has(h)) out.push({ subnet: s, kind: 'claim-of-unknown-host', what: h });
    }
  }
  return out;
}

/** Pure: records and host index entries of the pools, compared both ways (an entry matches host, pool and since). */
export function checkIndex(
  records: readonly { subnet: string; address: string; read: AssignmentRead }[],
  entries: readonly { hostId: string; subnet: string; address: string; since: string }[],
): FsckFinding[] {
  const id = (hostId: string, subnet: string, address: string, since: string): string =>
    JSON.stringify([hostId, subnet, address, since]);
  const indexed = new Set(entries.map((e) => id(e.hostId, e.subnet, e.address, e.since)));
  const recorded = new Set<string>();
  const out: FsckFinding[] = [];
  for (const r of records) {
    if (r.read === 'unreadable') continue;
    const key = id(r.read.assignment.hostId, r.subnet, r.address, r.read.assignment.since);
    recorded.add(key);
    if (!indexed.has(key))
      out.push({ subnet: r.subnet, kind: 'index-missing', what: r.address, hostId: r.read.assignment.hostId });
  }
  // An unreadable record names no host: entries at its address are left alone.
  const unreadable = new Set(records.filter((r) => r.read === 'unreadable').map((r) => `${r.subnet}|${r.address}`));
  for (const e of entries) {
    if (recorded.has(id(e.hostId, e.subnet, e.address, e.since)) || unreadable.has(`${e.subnet}|${e.address}`))
      continue;
    out.push({ subnet: e.subnet, kind: 'index-stale', what: e.address, hostId: e.hostId });
  }
  return out;
}

export async function fsck(stores: IpamStores, knownHosts?: ReadonlySet<string>): Promise<FsckFinding[]> {
  const out: FsckFinding[] = [];
  const all: { subnet: string; address: string; read: AssignmentRead }[] = [];
  for (const p of await stores.pools.readAll()) {
    const [blocks, records] = await Promise.all([stores.blocks.readAll(p.subnet), stores.addresses.list(p.subnet)]);
    out.push(...checkPool(p.subnet, p.config, blocks, records, knownHosts));
    for (const r of records) all.push({ subnet: formatSubnet(p.subnet), ...r });
  }
  // While an upgrade fills the index in, missing entries are expected: the backfill adds them.
  if (await stores.hostIndex.complete()) {
    const entries: { hostId: string; subnet: string; address: string; since: string }[] = [];
    for await (const page of stores.hostIndex.everyEntry()) entries.push(...page);
    out.push(...checkIndex(all, entries));
  }
  return out;
}

/** Drops the stale index entries found, and starts a new backfill pass when entries were missing. */
export async function repairIndex(stores: IpamStores, findings: readonly FsckFinding[]): Promise<number> {
  let repaired = 0;
  const stale = new Map<string, { subnet: string; address: string; since: string; poolId: string }[]>();
  for (const f of findings) {
    if (f.kind !== 'index-stale' || f.hostId === undefined) continue;
    stale.set(f.hostId, [...(stale.get(f.hostId) ?? []), { subnet: f.subnet, address: f.what, since: '', poolId: '' }]);
  }
  for (const [hostId, entries] of stale) repaired += await stores.hostIndex.dropStale(hostId, entries);
  if (findings.some((f) => f.kind === 'index-missing')) {
    await stores.hostIndex.refill();
    repaired++;
  }
  return repaired;
}

/**
 * Makes the bits of each block named by a finding agree with its records, judged again on a fresh read of the
 * block (compare-and-swap: a change meanwhile makes it read again). Returns the number of blocks rewritten.
 */
export async function repairBits(stores: IpamStores, findings: readonly FsckFinding[]): Promise<number> {
  const subnets = await stores.pools.listSubnets();
  const targets = new Map<string, { subnet: Subnet; block: bigint; addresses: Set<string> }>();
  for (const f of findings) {
    if (f.kind !== 'bit-without-record' && f.kind !== 'record-without-bit') continue;
    const subnet = subnets.find((x) => formatSubnet(x) === f.subnet);
    if (!subnet) continue;
    const block = blockOf(offsetIn(subnet, f.what));
    const key = `${f.subnet}#${block}`;
    const t = targets.get(key) ?? { subnet, block, addresses: new Set<string>() };
    t.addresses.add(f.what);
    targets.set(key, t);
  }
  let rewritten = 0;
  for (const t of targets.values()) {
    const done = await stores.retry.retrying(`repair the bits of a block of ${formatSubnet(t.subnet)}`, async () => {
      const view = await stores.blocks.read(t.subnet, t.block, [...t.addresses]);
      if (!view) return false;
      let bits = view.bits;
      for (const a of t.addresses) bits = withBit(bits, bitOf(offsetIn(t.subnet, a)), view.assignments.has(a));
      if (bits.every((b, i) => b === view.bits[i])) return false;
      const edit = summaryEdit(blockState(view), bits, allocatable(view.config, t.subnet));
      return (await stores.blocks.commit(view, editCommit({ subnet: t.subnet }, edit))) ? true : undefined;
    });
    if (done) rewritten++;
  }
  return rewritten;
}
