import type { Etcd3 } from 'etcd3';
import type { EtcdSettings } from '../config/settings.js';
import type { ConflictRetry, IpamStores, PoolWatch, PoolWatchEvents } from '../ipam/ports.js';
import type { Logger } from '../observability/logger.js';
import { EtcdAddressRecords } from './address-records.js';
import { EtcdBlockRepository } from './block-repository.js';
import { type ChangeReport, IpamChangeWatch } from './change-watch.js';
import { createEtcdClient } from './etcd-client.js';
import { EtcdIo } from './etcd-io.js';
import { EtcdHostIndex } from './host-index.js';
import { HostRegistry } from './host-registry.js';
import { IpamKeys } from './keys.js';
import { EtcdPoolRepository } from './pool-repository.js';
import { EtcdPoolWatch } from './pool-watch.js';

/**
 * Everything flatnet keeps in etcd under one prefix, built once per process over one client: the IPAM's
 * repositories, the host registry and the health probe. Nothing outside store/ touches the etcd client.
 */
export class EtcdStores {
  readonly io: EtcdIo;
  readonly keys: IpamKeys;
  readonly ipam: IpamStores & { blocks: EtcdBlockRepository };
  readonly hosts: HostRegistry;

  /** `pageSize`: keys per page of the paged range reads (listings, block scans); tests make it small. */
  constructor(
    private readonly etcd: Etcd3,
    private readonly prefix: string,
    logger: Logger,
    options: { pageSize?: number } = {},
  ) {
    this.io = new EtcdIo(etcd, logger, { prefix });
    this.keys = new IpamKeys(prefix);
    const retry: ConflictRetry = { retrying: (what, attempt) => this.io.retrying(what, attempt) };
    this.hosts = new HostRegistry(etcd, this.io, prefix);
    const hosts = this.hosts;
    this.ipam = {
      pools: new EtcdPoolRepository(this.io, this.keys, options.pageSize),
      blocks: new EtcdBlockRepository(this.io, this.keys, options.pageSize),
      addresses: new EtcdAddressRecords(this.io, this.keys, options.pageSize),
      hostIndex: new EtcdHostIndex(this.io, this.keys, (since) => hosts.olderLayout(since), logger, options.pageSize),
      retry,
    };
  }

  /** A client from the settings (TLS, auth, timeouts) and the stores over it; close() closes the client. */
  static open(settings: EtcdSettings, logger: Logger): EtcdStores {
    return new EtcdStores(createEtcdClient(settings), settings.etcdPrefix, logger);
  }

  /**
   * Resolves when etcd answers a quorum read under the prefix, which proves reachability, TLS, authentication and
   * the read permission at once; rejects with FlatnetError('unavailable') (the etcd3 error as its cause).
   */
  async probe(): Promise<void> {
    await this.io.read([`${this.prefix}/healthz-probe`]);
  }

  /** Starts an etcd watch on the pools and hosts that reports what changed (see IpamChangeWatch); stop() ends it. */
  async watchChanges(onChange: (report: ChangeReport) => void, debounceMs?: number): Promise<IpamChangeWatch> {
    const watch = new IpamChangeWatch(this.etcd, this.keys, this.prefix, onChange, debounceMs);
    await watch.start();
    return watch;
  }

  /** A watch of the pools this host uses (see EtcdPoolWatch); the caller closes it before close(). */
  watchPools(events: PoolWatchEvents, logger: Logger): PoolWatch {
    return new EtcdPoolWatch(this.etcd, this.keys, events, logger);
  }

  close(): void {
    this.io.close();
    this.etcd.close();
  }
}
