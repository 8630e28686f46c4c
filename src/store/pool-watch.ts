import type { Etcd3, Watcher } from 'etcd3';
import { errorMessage } from '../errors.js';
import type { PoolWatch, PoolWatchEvents } from '../ipam/ports.js';
import { formatSubnet, type Subnet } from '../net/address.js';
import type { Logger } from '../observability/logger.js';
import type { IpamKeys } from './keys.js';

/** A restart that could not read etcd tries again this much later. */
const RETRY_MS = 1000;

/**
 * PoolWatch over etcd: one watcher on each followed pool's config key, all carried by the client's one watch
 * stream. The etcd3 client re-attaches a watcher after a lost stream from the revision after the last one it saw,
 * so changes made while the host was cut off arrive when it is back. When etcd cancels a watch instead (that
 * revision was compacted meanwhile; etcd gives no reason the client passes on), changes may be lost: the watch
 * starts again just after the current revision, and the host is told to read everything again (resync), which
 * covers whatever came before.
 */
export class EtcdPoolWatch implements PoolWatch {
  private readonly watchers = new Map<string, Watcher>();
  private wanted = new Map<string, Subnet>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly etcd: Etcd3,
    private readonly keys: IpamKeys,
    private readonly events: PoolWatchEvents,
    private readonly logger: Logger,
  ) {}

  follow(subnets: readonly Subnet[]): void {
    if (this.closed) return;
    this.wanted = new Map(subnets.map((s) => [formatSubnet(s), s]));
    for (const [name, w] of this.watchers) {
      if (this.wanted.has(name)) continue;
      this.watchers.delete(name);
      void w.cancel().catch(() => undefined);
    }
    for (const [name, subnet] of this.wanted) if (!this.watchers.has(name)) this.open(name, subnet);
  }

  private open(name: string, subnet: Subnet, startRevision?: string): void {
    const builder = this.etcd.watch().key(this.keys.config(subnet));
    if (startRevision !== undefined) builder.startRevision(startRevision);
    const w = builder.watcher();
    this.watchers.set(name, w);
    w.on('put', () => this.events.changed(subnet));
    w.on('delete', () => this.events.changed(subnet));
    w.on('error', (err: unknown) => this.cancelled(name, w, err));
  }

  private cancelled(name: string, w: Watcher, err: unknown): void {
    if (this.closed || this.watchers.get(name) !== w) return;
    this.watchers.delete(name);
    this.logger.info(
      { subnet: name, error: errorMessage(err) },
      'pool watch cancelled by etcd; reading the pools again',
    );
    void this.restart(name);
  }

  /** Watches again from just after the current revision, then has everything read again. */
  private async restart(name: string): Promise<void> {
    const subnet = this.wanted.get(name);
    if (this.closed || subnet === undefined || this.watchers.has(name)) return;
    let revision: string;
    try {
      revision = (await this.etcd.get(this.keys.config(subnet)).exec()).header.revision;
    } catch (err) {
      this.logger.warn({ subnet: name, error: errorMessage(err) }, 'pool watch: etcd unreachable; trying again');
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.restart(name);
      }, RETRY_MS);
      t.unref();
      this.timers.add(t);
      return;
    }
    if (this.closed || this.wanted.get(name) !== subnet || this.watchers.has(name)) return;
    this.open(name, subnet, String(BigInt(revision) + 1n));
    this.events.resync();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    const all = [...this.watchers.values()];
    this.watchers.clear();
    await Promise.all(all.map((w) => w.cancel().catch(() => undefined)));
  }
}
