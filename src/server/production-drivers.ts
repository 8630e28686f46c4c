import { createIpam } from '../ipam/services/driver-service.js';
import { HostNetworkDriver } from '../netdriver/host-network-driver.js';
import type { DriverFactory } from './drivers.js';
import { ipamHealer, openReleaseJournal } from './heal.js';

/** The production wiring: IPAM and admin over the etcd stores, networking on this host. */
export const createDrivers: DriverFactory = (stores, settings, logger) => {
  const network = new HostNetworkDriver({
    stateDir: settings.stateDir,
    dockerSocket: settings.dockerSocket,
    logger: logger.child({ component: 'netdriver' }),
  });
  const journal = openReleaseJournal(settings.stateDir, logger);
  const { driver, admin } = createIpam(stores.ipam, settings.hostId, logger, journal);
  return {
    heal: ipamHealer(driver, stores.ipam, settings, logger),
    ipam: driver,
    network,
    admin,
    init: () => network.init(),
    close: () => network.close(),
  };
};
