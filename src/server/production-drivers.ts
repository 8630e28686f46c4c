import { DockerEngineApi } from '../docker/engine-api.js';
import { createIpam } from '../ipam/services/driver-service.js';
import { OwnerService } from '../ipam/services/owner-service.js';
import { HostNetworkDriver } from '../netdriver/host-network-driver.js';
import { coolingFrom } from './cooling.js';
import type { DriverFactory } from './drivers.js';
import { ipamHealer, openReleaseJournal } from './heal.js';
import { EndpointOwners } from './endpoint-owners.js';
import type { ConflictProber } from './conflict-prober.js';
import { hostConflictProber } from './conflict-probing.js';

/**
 * The production wiring: IPAM and admin over the etcd stores, networking on this host, and the network driver
 * telling the IPAM (in the background) which endpoint and container hold each address.
 */
export const createDrivers: DriverFactory = (stores, settings, logger) => {
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
  const cooling = coolingFrom(settings);
  const journal = openReleaseJournal(settings.stateDir, logger);
  let prober: ConflictProber | undefined;
  const { driver, admin } = createIpam(stores.ipam, settings.hostId, logger, {
    journal,
    releaseAfterReply: true,
    cooling,
    onAllocated: (poolId) => prober?.allocated(poolId),
  });
  if (settings.conflictProbe)
    prober = hostConflictProber(
      stores.ipam,
      settings,
      (poolId, n) => driver.upcoming(poolId, n),
      logger,
      {},
      (events) => stores.watchPools(events, logger.child({ component: 'pool-watch' })),
    );
  else logger.info('conflict probe off (--conflict-probe off): addresses are handed out without an ARP probe');
  return {
    heal: ipamHealer(driver, stores.ipam, settings, logger),
    ipam: driver,
    network,
    admin,
    init: async () => {
      await network.init();
      prober?.start();
    },
    close: async () => {
      await prober?.stop();
      await network.close();
      await owners.close();
      await driver.settleReleases();
    },
  };
};
