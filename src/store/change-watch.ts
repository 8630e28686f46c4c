import type { Etcd3, Watcher } from 'etcd3';
import { formatSubnet, offsetIn, parseSubnet, type Subnet } from '../net/address.js';
import type { IpamKeys } from './keys.js';

/**
 * What changed in etcd since the last report, in the IPAM's own terms: per pool the blocks touched (or the whole
 * pool, for a config or claim change or too many blocks), and whether the host registry moved.
 */
export interface ChangeReport {
  pools: Map<string, ReadonlySet<string> | 'pool'>;
  hosts: boolean;
}

/** A pool with more changed blocks than this in one report is reported as changed as a whole (bounded memory). */
const MAX_BLOCKS_PER_POOL = 256;

/** One changed key, named for the IPAM: the pool's subnet and the block (hex) or 'pool'; undefined = not ours. */
export function changeOfKey(keys: IpamKeys, key: string): { subnet: string; block: string | 'pool' } | undefined {
  const root = keys.allPoolsPrefix();
  if (!key.startsWith(root)) return undefined;
  const [poolPart, kind, ...rest] = key.slice(root.length).split('/');
  if (poolPart === undefined || kind === undefined) return undefined;
  let subnet: Subnet;
  try {
    subnet = parseSubnet(poolPart.replace('_', '/'));
  } catch {
    return undefined;
  }
  const text = formatSubnet(subnet);
  const tail = rest.join('/');
  switch (kind) {
    case 'block':
    case 'cool':
      return /^[0-9a-f]+$/.test(tail) ? { subnet: text, block: BigInt(`0x${tail}`).toString(16) } : undefined;
    case 'addr':
    case 'rel':
      try {
        return { subnet: text, block: (offsetIn(subnet, tail) >> 8n).toString(16) };
      } catch {
        return undefined;
      }
    case 'config':
    case 'claim':
      return { subnet: text, block: 'pool' };
    default:
      // Summary nodes and name hints follow block writes: those already report the block.
      return undefined;
  }
}

/**
 * An etcd watch on the pools and the host registry that reports, at most every `debounceMs`, what changed. The
 * etcd3 watcher resumes from its last revision after a reconnect, so no change is lost while etcd is reachable.
 */
export class IpamChangeWatch {
  private watchers: Watcher[] = [];
  private pending: { pools: Map<string, Set<string> | 'pool'>; hosts: boolean } = { pools: new Map(), hosts: false };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly etcd: Etcd3,
    private readonly keys: IpamKeys,
    private readonly prefix: string,
    private readonly onChange: (report: ChangeReport) => void,
    private readonly debounceMs = 250,
  ) {}

  async start(): Promise<void> {
    const root = this.prefix.replace(/\/+$/, '');
    const pools = await this.etcd.watch().prefix(this.keys.allPoolsPrefix()).create();
    this.watchers = [pools];
    const hosts = await this.etcd
      .watch()
      .prefix(`${root}/hosts/`)
      .create()
      .catch(async (err: unknown) => {
        await this.stop();
        throw err;
      });
    this.watchers.push(hosts);
    if (this.stopped) return this.stop();
    const onPool = (kv: { key: Buffer }): void => this.notePool(kv.key.toString());
    pools.on('put', onPool).on('delete', onPool);
    const onHost = (): void => {
      this.pending.hosts = true;
      this.schedule();
    };
    hosts.on('put', onHost).on('delete', onHost);
    // etcd3 reconnects watchers on its own; an error here only means a change may come late.
    for (const w of this.watchers) w.on('error', () => undefined);
  }

  private notePool(key: string): void {
    const change = changeOfKey(this.keys, key);
    if (!change) return;
    const seen = this.pending.pools.get(change.subnet);
    if (seen === 'pool') return;
    if (change.block === 'pool') {
      this.pending.pools.set(change.subnet, 'pool');
    } else if (seen === undefined) {
      this.pending.pools.set(change.subnet, new Set([change.block]));
    } else {
      seen.add(change.block);
      if (seen.size > MAX_BLOCKS_PER_POOL) this.pending.pools.set(change.subnet, 'pool');
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const report = this.pending;
      this.pending = { pools: new Map(), hosts: false };
      this.onChange(report);
    }, this.debounceMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const ws = this.watchers;
    this.watchers = [];
    await Promise.allSettled(ws.map((w) => w.cancel()));
  }
}
