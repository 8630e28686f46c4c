import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { settingsSchema, type Settings } from '../../src/config/settings.js';
import type { HostView } from '../../src/ipam/services/reconcile-plan.js';
import type { HostViewSource } from '../../src/ipam/services/reconcile.js';
import type { Logger } from '../../src/observability/logger.js';
import { startHealing } from '../../src/agents/ipam-healing.js';
import type { BackgroundWork } from '../../src/util/background-work.js';
import { createHostIpam, type HostIpam } from '../../src/server/production-drivers.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import type { HostRegistration } from '../../src/store/host-registry.js';

/** The endpoints a simulated host holds: what Docker would list, kept in memory. */
class HeldAddresses implements HostViewSource {
  readonly held = new Set<string>();

  view(): Promise<HostView> {
    return Promise.resolve({
      held: new Set(this.held),
      complete: new Set(),
      incomplete: new Map(),
      dockerComplete: true,
    });
  }
}

export interface SimHostOptions {
  hostId: string;
  etcd: Etcd3;
  endpoints: string[];
  prefix: string;
  stateDir: string;
  reconcileIntervalMs: number;
  probeTickMs: number;
  etcdTimeoutMs: number;
  logger: Logger;
}

/**
 * One host as `flatnet server` runs it, minus HTTP and netlink: the server's IPAM composition (createHostIpam)
 * over its own stores, its host registration (lease), its heal loops (journal, reconcile) and its conflict prober.
 * The prober's bridge is a name and its ARP probe answers "free" at once, so that only etcd traffic is measured;
 * the reconcile's view of the host is the addresses this object handed out and not released.
 */
export class SimHost {
  readonly hostId: string;
  private readonly held = new HeldAddresses();
  private readonly byPool = new Map<string, string[]>();
  private readonly stores: EtcdStores;
  private readonly ipam: HostIpam;
  private readonly settings: Settings;
  private registration: HostRegistration | undefined;
  private healing: BackgroundWork | undefined;

  private constructor(o: SimHostOptions, settings: Settings) {
    this.hostId = o.hostId;
    this.settings = settings;
    const logger = o.logger.child({ host: o.hostId });
    this.stores = new EtcdStores(o.etcd, o.prefix, logger);
    this.ipam = createHostIpam(this.stores.ipam, settings, logger, {
      hostView: this.held,
      link: {
        bridgeFor: () => Promise.resolve('bench0'),
        probe: (_ifname, address) => Promise.resolve({ address, answered: false }),
        localNetworks: () => Promise.resolve('bench0'),
      },
      proberOptions: { tickMs: o.probeTickMs },
    });
  }

  static async create(o: SimHostOptions): Promise<SimHost> {
    await mkdir(o.stateDir, { recursive: true });
    const settings = settingsSchema.parse({
      socket: join(o.stateDir, 'unused.sock'),
      etcdEndpoints: o.endpoints.join(','),
      etcdPrefix: o.prefix,
      etcdTimeoutMs: o.etcdTimeoutMs,
      hostId: o.hostId,
      logLevel: 'silent',
      stateDir: o.stateDir,
      reconcileIntervalMs: o.reconcileIntervalMs,
    });
    return new SimHost(o, settings);
  }

  /** What the server starts after its socket listens: the registration, the heal loops, the prober. */
  start(logger: Logger): void {
    this.registration = this.stores.hosts.start({ hostId: this.hostId, logger, version: 'scale-bench' });
    this.healing = startHealing(this.ipam.heal, this.settings, logger);
    this.ipam.prober?.start();
  }

  get registered(): Promise<void> {
    return this.registration?.ready ?? Promise.resolve();
  }

  get heldCount(): number {
    return this.held.held.size;
  }

  async requestPool(pool: string): Promise<string> {
    // The whole subnet as its ip-range (--ip-range): flatnet hands out nothing of a subnet without one.
    const r = await this.ipam.driver.requestPool({
      addressSpace: 'FlatLocal',
      pool,
      subPool: pool,
      options: {},
      v6: false,
    });
    return r.poolId;
  }

  async requestAddress(poolId: string): Promise<string> {
    const r = await this.ipam.driver.requestAddress({ poolId, address: '', kind: 'container' });
    const address = r.address.split('/')[0] as string;
    this.held.held.add(address);
    let list = this.byPool.get(poolId);
    if (!list) this.byPool.set(poolId, (list = []));
    list.push(address);
    return address;
  }

  /** Releases the oldest address this host holds in the pool, in Docker's order: the endpoint goes, then its address. */
  async releaseOldest(poolId: string): Promise<void> {
    const address = this.byPool.get(poolId)?.shift();
    if (address === undefined) return;
    this.held.held.delete(address);
    await this.ipam.driver.releaseAddress(poolId, address);
  }

  /** The server's shutdown order: heal loops, prober and releases, then the lease. The client is the caller's. */
  async stop(): Promise<void> {
    await this.healing?.stop();
    await this.ipam.prober?.stop();
    await this.ipam.driver.settleReleases();
    await this.registration?.stop();
    this.stores.io.close();
  }
}
