import type { Etcd3 } from 'etcd3';
import type { Settings } from '../config/settings.js';
import type { IpamAdmin } from '../ipam/admin.js';
import type { IpamDriver } from '../ipam/ipam-driver.js';
import type { NetworkDriver } from '../netdriver/network-driver.js';
import type { Logger } from '../observability/logger.js';

export interface Drivers {
  ipam: IpamDriver;
  network: NetworkDriver;
  admin: IpamAdmin;
  /** Host work to redo before serving (re-establish bridges after a reboot, remove orphan veths). */
  init?: () => Promise<void>;
  /** Work to finish before etcd closes (background veth removals and announcements). */
  close?: () => Promise<void>;
}

export type DriverFactory = (etcd: Etcd3, settings: Settings, logger: Logger) => Drivers;
