import type { PoolWatch, PoolWatchEvents } from '../../src/ipam/ports.js';
import { formatSubnet, type Subnet } from '../../src/net/address.js';
import { keys, type MemoryStores } from './memory-stores.js';

/**
 * PoolWatch over the in-memory stores: a commit that writes or deletes a followed pool's config key is told as
 * changed, as etcd's watch of that key tells it; compact() plays etcd cancelling a watch whose revision was
 * compacted while it was away (the host is told to resync).
 */
export class MemoryPoolWatch implements PoolWatch {
  private followed = new Map<string, Subnet>();
  private readonly stop: () => void;
  closed = false;

  constructor(
    stores: MemoryStores,
    private readonly events: PoolWatchEvents,
  ) {
    this.stop = stores.listen((changed) => {
      for (const subnet of this.followed.values())
        if (!this.closed && changed.includes(keys.config(subnet))) this.events.changed(subnet);
    });
  }

  follow(subnets: readonly Subnet[]): void {
    this.followed = new Map(subnets.map((s) => [formatSubnet(s), s]));
  }

  /** The names of the pools followed. */
  following(): string[] {
    return [...this.followed.keys()];
  }

  compact(): void {
    if (!this.closed) this.events.resync();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop();
  }
}
