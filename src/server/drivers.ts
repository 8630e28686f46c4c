import type { Settings } from '../config/settings.js';
import type { IpamDriver } from '../ipam/contract.js';
import type { NetworkDriver } from '../netdriver/network-driver.js';
import type { Logger } from '../observability/logger.js';
import type { EtcdStores } from '../store/etcd-stores.js';
import type { Healer } from '../agents/ipam-healing.js';

export interface Drivers {
  ipam: IpamDriver;
  network: NetworkDriver;
  /** Host work to redo before serving (re-establish bridges after a reboot, remove orphan veths). */
  init?: () => Promise<void>;
  /** Work to finish before etcd closes (background veth removals and announcements). */
  close?: () => Promise<void>;
  /** Background healing of the IPAM (journal replay, reconcile); the server runs its loops. */
  heal?: Healer;
}

/** Builds the drivers over the process's stores (made once by the server). */
export type DriverFactory = (stores: EtcdStores, settings: Settings, logger: Logger) => Drivers;
