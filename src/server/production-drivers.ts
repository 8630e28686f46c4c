import { EtcdIpamAdmin } from '../ipam/etcd-ipam-admin.js';
import { EtcdIpamDriver } from '../ipam/etcd-ipam-driver.js';
import { HostNetworkDriver } from '../netdriver/host-network-driver.js';
import type { DriverFactory } from './drivers.js';

/** The production wiring: IPAM and admin over etcd, networking on this host. */
export const createDrivers: DriverFactory = (etcd, settings, logger) => {
  const network = new HostNetworkDriver({
    stateDir: settings.stateDir,
    dockerSocket: settings.dockerSocket,
    logger: logger.child({ component: 'netdriver' }),
  });
  return {
    ipam: new EtcdIpamDriver({ etcd, prefix: settings.etcdPrefix, hostId: settings.hostId, logger: logger.child({ component: 'ipam' }) }),
    network,
    admin: new EtcdIpamAdmin({ etcd, prefix: settings.etcdPrefix, logger: logger.child({ component: 'ipam-admin' }) }),
    init: () => network.init(),
    close: () => network.close(),
  };
};
