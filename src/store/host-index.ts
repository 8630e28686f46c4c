import { z } from 'zod';
import type { HostIndex, IndexedAddress } from '../ipam/ports.js';
import { formatSubnet, parseSubnet, type Subnet } from '../net/address.js';
import type { Logger } from '../observability/logger.js';
import { DEFAULT_PAGE_SIZE, type EtcdIo, type Expect, type Kv, type Write } from './etcd-io.js';
import { addressOfKey, hostAddrOfKey, type IpamKeys, prefixEnd } from './keys.js';
import { decodeAssignment, decodeIndexEntry, encodeIndexEntry, poolIndexSchema, safeJson } from './records.js';
import { MARKER_COST, perTxn, splitByBudget } from './txn-budget.js';

const layoutSchema = z.object({
  hostIndex: z.enum(['filling', 'complete']),
  /** Where the pass goes on: the next record after `after` (an address; '' = the pool's first) in `subnet`. */
  cursor: z.object({ subnet: z.string(), after: z.string() }).optional(),
  /** When the running pass began (ISO): an older version seen alive since then makes it start over. */
  passStart: z.string().optional(),
  /** When a server last found an older version alive (ISO): the others do not look again for a while. */
  olderSeenAt: z.string().optional(),
});
type Layout = z.infer<typeof layoutSchema>;

/**
 * How far back an older version's last-seen time still counts as "alive during the pass": its durable last-seen
 * time is refreshed every minute and its live key outlives a crash by its lease's TTL.
 */
const LAST_SEEN_SLACK_MS = 120_000;
/**
 * How long after one server found an older version alive the others wait before looking again: during a rolling
 * upgrade the registry is read about once per period cluster-wide, not once per server.
 */
const OLDER_RECHECK_MS = 60_000;
/** Bytes per backfilled record in a txn: its addr key's compare, its index key and entry. */
const FILL_BYTES_PER_RECORD = 768;

/** The hosts that write address records without index entries (older versions), seen alive since a time. */
export type OlderHosts = (seenSince: Date) => Promise<string[]>;

/**
 * The per-host index over etcd, and its backfill for a cluster upgraded from the layout without it (see keys.ts
 * and the README's "Upgrade"). Until the layout marker says "complete", readers list the pools instead.
 */
export class EtcdHostIndex implements HostIndex {
  constructor(
    private readonly io: EtcdIo,
    private readonly keys: IpamKeys,
    private readonly olderHosts: OlderHosts,
    private readonly logger?: Logger,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  /** One key read, each time: `fsck --repair` can start a new pass, and every reader must then list the pools. */
  async complete(): Promise<boolean> {
    const kv = (await this.io.read([this.keys.layout()])).kvs.get(this.keys.layout());
    return kv !== undefined && parseLayout(kv)?.hostIndex === 'complete';
  }

  async *entries(hostId: string): AsyncGenerator<IndexedAddress[]> {
    const prefix = this.keys.hostAddrPrefix(hostId);
    for await (const page of this.io.pages(prefix, prefixEnd(prefix), this.pageSize)) {
      const out: IndexedAddress[] = [];
      for (const kv of page) {
        const where = hostAddrOfKey(prefix, kv.key);
        const entry = decodeIndexEntry(kv.value);
        if (where !== undefined && entry !== undefined) out.push({ ...where, ...entry });
      }
      if (out.length > 0) yield out;
    }
  }

  async count(hostId: string, subnet?: Subnet): Promise<number> {
    const prefix =
      subnet === undefined ? this.keys.hostAddrPrefix(hostId) : this.keys.hostAddrPoolPrefix(hostId, subnet);
    return (await this.io.readRange(prefix, prefixEnd(prefix), { countOnly: true })).count;
  }

  async *everyEntry(): AsyncGenerator<(IndexedAddress & { hostId: string })[]> {
    const root = this.keys.hostIndexPrefix();
    for await (const page of this.io.pages(root, prefixEnd(root), this.pageSize)) {
      const out: (IndexedAddress & { hostId: string })[] = [];
      for (const kv of page) {
        const slash = kv.key.indexOf('/', root.length);
        if (slash < 0) continue;
        const hostId = decodeURIComponent(kv.key.slice(root.length, slash));
        const where = hostAddrOfKey(this.keys.hostAddrPrefix(hostId), kv.key);
        const entry = decodeIndexEntry(kv.value);
        if (where !== undefined && entry !== undefined) out.push({ hostId, ...where, ...entry });
      }
      if (out.length > 0) yield out;
    }
  }

  async refill(): Promise<void> {
    await this.io.write({
      expect: [],
      puts: [{ key: this.keys.layout(), value: JSON.stringify({ hostIndex: 'filling' }) }],
    });
  }

  async dropStale(hostId: string, entries: readonly IndexedAddress[]): Promise<number> {
    let dropped = 0;
    const groups = splitByBudget(
      entries,
      () => ({ compares: 2, writes: 1, bytes: FILL_BYTES_PER_RECORD }),
      MARKER_COST,
    );
    for (const group of groups) {
      const keysOf = (e: IndexedAddress): { addr: string; index: string } => {
        const subnet = parseSubnet(e.subnet);
        return { addr: this.keys.addr(subnet, e.address), index: this.keys.hostAddr(hostId, subnet, e.address) };
      };
      const snap = await this.io.read(group.flatMap((e) => Object.values(keysOf(e))));
      const w: Write = { expect: [], puts: [], deletes: [] };
      for (const e of group) {
        const k = keysOf(e);
        const index = snap.kvs.get(k.index);
        if (index === undefined) continue;
        const record = snap.kvs.get(k.addr);
        const read = record ? decodeAssignment(record.value) : undefined;
        // An unreadable record may still be this host's: its entry stays.
        if (read === 'unreadable') continue;
        if (read !== undefined && read.assignment.hostId === hostId) continue;
        w.expect.push(
          { key: k.addr, modRevision: record?.modRevision },
          { key: k.index, modRevision: index.modRevision },
        );
        w.deletes?.push(k.index);
      }
      if ((w.deletes?.length ?? 0) > 0 && (await this.io.write(w))) dropped += w.deletes?.length ?? 0;
    }
    return dropped;
  }

  /**
   * One txn of the backfill: a page of one pool's records gets its missing index entries (each compared to its
   * record as read, so a record freed meanwhile leaves no entry) and the cursor moves on, under a compare of the
   * marker (backfills of several hosts take turns; a step repeated after a lost reply changes nothing).
   */
  async fillStep(): Promise<'complete' | 'progress' | 'waiting' | 'conflict'> {
    const layoutKey = this.keys.layout();
    const snap = await this.io.read([layoutKey, this.keys.index()]);
    const markerKv = snap.kvs.get(layoutKey);
    const marker = markerKv ? parseLayout(markerKv) : undefined;
    if (marker?.hostIndex === 'complete') return 'complete';
    const setMarker = (next: Layout, w: Write = { expect: [], puts: [] }): Promise<boolean> =>
      this.io.write({
        ...w,
        expect: [...w.expect, { key: layoutKey, modRevision: markerKv?.modRevision }],
        puts: [...w.puts, { key: layoutKey, value: JSON.stringify(next) }],
      });
    const now = new Date();
    if (marker?.passStart === undefined) {
      const seen = marker?.olderSeenAt === undefined ? undefined : Date.parse(marker.olderSeenAt);
      if (seen !== undefined && now.getTime() - seen < OLDER_RECHECK_MS) return 'waiting';
      // A pass starts only with no older version alive: their writes would carry no index entries.
      if ((await this.olderHosts(now)).length > 0)
        return (await setMarker({ hostIndex: 'filling', olderSeenAt: now.toISOString() })) ? 'waiting' : 'conflict';
      const ok = await setMarker({ hostIndex: 'filling', passStart: now.toISOString() });
      return ok ? 'progress' : 'conflict';
    }
    const passStart = marker.passStart;
    const subnets = indexSubnets(snap.kvs.get(this.keys.index()));
    const at = nextPool(subnets, marker.cursor);
    if (at === undefined) {
      const older = await this.olderHosts(new Date(Date.parse(passStart) - LAST_SEEN_SLACK_MS));
      if (older.length > 0) {
        this.logger?.info({ hosts: older }, 'host index backfill starts over: an older version ran during the pass');
        return (await setMarker({ hostIndex: 'filling', olderSeenAt: now.toISOString() })) ? 'waiting' : 'conflict';
      }
      if (!(await setMarker({ hostIndex: 'complete' }))) return 'conflict';
      this.logger?.info('host index complete: reconciles read only their own host index');
      return 'complete';
    }
    const { subnet, after } = at;
    const perStep = Math.min(
      this.pageSize,
      perTxn(
        { compares: 1, writes: 1, bytes: FILL_BYTES_PER_RECORD },
        { compares: 1 + MARKER_COST.compares, writes: 1 + MARKER_COST.writes, bytes: 4096 },
      ),
    );
    const page = await this.firstPage(subnet, after, perStep);
    const w: Write = { expect: [], puts: [] };
    const prefix = this.keys.addrPrefix(subnet);
    const wanted = page.flatMap((kv) => {
      const read = decodeAssignment(kv.value);
      if (read === 'unreadable') return [];
      const address = addressOfKey(prefix, kv.key);
      return [
        {
          kv,
          key: this.keys.hostAddr(read.assignment.hostId, subnet, address),
          value: encodeIndexEntry(read.assignment),
        },
      ];
    });
    const present = await this.io.read(wanted.map((x) => x.key));
    for (const x of wanted) {
      if (present.kvs.get(x.key)?.value.toString() === x.value) continue;
      const expect: Expect = { key: x.kv.key, modRevision: x.kv.modRevision };
      w.expect.push(expect);
      w.puts.push({ key: x.key, value: x.value });
    }
    const last = page.at(-1);
    const cursor =
      page.length < perStep || last === undefined
        ? { subnet: formatSubnet(subnet), after: '\uffff' }
        : { subnet: formatSubnet(subnet), after: addressOfKey(prefix, last.key) };
    return (await setMarker({ hostIndex: 'filling', passStart, cursor }, w)) ? 'progress' : 'conflict';
  }

  private async firstPage(subnet: Subnet, after: string, limit: number): Promise<Kv[]> {
    const prefix = this.keys.addrPrefix(subnet);
    const start = after === '' ? prefix : `${this.keys.addr(subnet, after)}\0`;
    for await (const page of this.io.pages(start, prefixEnd(prefix), limit)) return page;
    return [];
  }
}

function parseLayout(kv: Kv): Layout | undefined {
  const parsed = layoutSchema.safeParse(safeJson(kv.value));
  return parsed.success ? parsed.data : undefined;
}

function indexSubnets(kv: Kv | undefined): Subnet[] {
  const parsed = poolIndexSchema.safeParse(kv ? safeJson(kv.value) : { subnets: [] });
  const subnets = parsed.success ? parsed.data.subnets.map((s) => parseSubnet(s)) : [];
  return subnets.sort((a, b) => formatSubnet(a).localeCompare(formatSubnet(b)));
}

/**
 * Where the pass reads next: the cursor's pool (after its address), or the first pool after it once that pool is
 * done ('\uffff') or gone; undefined = every pool done. Pools are taken in the order of their subnet text.
 */
function nextPool(subnets: readonly Subnet[], cursor: Layout['cursor']): { subnet: Subnet; after: string } | undefined {
  if (cursor === undefined) return subnets[0] ? { subnet: subnets[0], after: '' } : undefined;
  const same = subnets.find((s) => formatSubnet(s) === cursor.subnet);
  if (same !== undefined && cursor.after !== '\uffff') return { subnet: same, after: cursor.after };
  const next = subnets.find((s) => formatSubnet(s).localeCompare(cursor.subnet) > 0);
  return next ? { subnet: next, after: '' } : undefined;
}
