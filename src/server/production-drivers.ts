import type { Settings } from '../config/settings.js';
import { DockerEngineApi } from '../docker/engine-api.js';
import type { IpamStores, PoolWatch, PoolWatchEvents } from '../ipam/ports.js';
import { createIpam, type IpamDriverService } from '../ipam/services/driver-service.js';
import type { IpamAdminService } from '../ipam/services/admin-service.js';
import { OwnerService } from '../ipam/services/owner-service.js';
import type { HostViewSource } from '../ipam/services/reconcile.js';
import { HostNetworkDriver } from '../netdriver/host-network-driver.js';
import type { Logger } from '../observability/logger.js';
import { Agents } from '../agents/agents.js';
import { coolingFrom } from '../agents/cooling-options.js';
import type { DriverFactory } from './drivers.js';
import { type Healer, ipamHealer, openReleaseJournal } from '../agents/ipam-healing.js';
import { EndpointOwners } from '../agents/endpoint-owners.js';
import type { ConflictProber, ConflictProberOptions } from '../agents/conflict-prober.js';
import { hostConflictProber, type ProberLinkPorts } from '../agents/host-conflict-prober.js';

/** What a host's IPAM is made of besides etcd: the local ports its background work reads (defaults: this host's). */
export interface HostIpamPorts {
  /** This host's endpoints, for the reconcile (default: the state dir and the local dockerd). */
  hostView?: HostViewSource;
  /** The conflict prober's bridge lookup and ARP probe (default: the state dir's networks and arping). */
  link?: ProberLinkPorts;
  proberOptions?: Partial<ConflictProberOptions>;
  /** How the prober hears of changes to its pools' configs (default: none, it re-reads them each round). */
  watchPools?: (events: PoolWatchEvents) => PoolWatch;
}

/** One host's IPAM: the driver and admin, its healer (journal, reconcile) and its conflict prober (when on). */
export interface HostIpam {
  driver: IpamDriverService;
  admin: IpamAdminService;
  heal: Healer;
  prober: ConflictProber | undefined;
}

/**
 * The IPAM of one host as the server runs it, without the network driver: the scale bench builds many of these
 * in one process over its own ports.
 */
export function createHostIpam(
  stores: IpamStores,
  settings: Settings,
  logger: Logger,
  ports: HostIpamPorts = {},
): HostIpam {
  const cooling = coolingFrom(settings);
  const journal = openReleaseJournal(settings.stateDir, logger);
  let prober: ConflictProber | undefined;
  const { driver, admin } = createIpam(stores, settings.hostId, logger, {
    journal,
    releaseAfterReply: true,
    cooling,
    onAllocated: (poolId) => prober?.allocated(poolId),
  });
  if (settings.conflictProbe)
    prober = hostConflictProber(
      stores,
      settings,
      (poolId, n) => driver.upcoming(poolId, n),
      logger,
      ports.proberOptions,
      ports.link,
      ports.watchPools,
    );
  else logger.info('conflict probe off (--conflict-probe off): addresses are handed out without an ARP probe');
  return { driver, admin, heal: ipamHealer(driver, stores, settings, logger, ports.hostView), prober };
}

/**
 * The production wiring: the IPAM over the etcd stores, networking on this host, and the network driver
 * telling the IPAM (in the background) which endpoint and container hold each address.
 */
export const createDrivers: DriverFactory = (stores, settings, logger) => {
  const agents = new Agents(logger);
  const owners = new EndpointOwners({
    owners: new OwnerService(stores.ipam.pools, stores.ipam.addresses, settings.hostId),
    docker: new DockerEngineApi({ socketPath: settings.dockerSocket, timeoutMs: 2000 }),
    logger: logger.child({ component: 'owners' }),
  });
  const network = new HostNetworkDriver({
    stateDir: settings.stateDir,
    logger: logger.child({ component: 'netdriver' }),
    owners,
  });
  const { driver, heal, prober } = createHostIpam(stores.ipam, settings, logger, {
    watchPools: (events) => stores.watchPools(events, logger.child({ component: 'pool-watch' })),
  });
  // Stopped in this order: the prober first (it reads the allocator), the network driver's veth removals and
  // bridge re-checks, the owner records they may have queued, then the releases still landing.
  if (prober) agents.add('conflict prober', prober);
  agents.add('network driver background', { stop: () => network.close() });
  agents.add('endpoint owners', { stop: () => owners.close() });
  agents.add('releases landing', { stop: () => driver.settleReleases() });
  return {
    heal,
    ipam: driver,
    network,
    init: async () => {
      await network.init();
      await agents.start();
    },
    close: () => agents.stop(),
  };
};
