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
}

export type DriverFactory = (etcd: Etcd3, settings: Settings, logger: Logger) => Drivers;

/** Drivers may hold timers or queues (the IPAM batches requests); those that do expose close(). */
export async function closeDrivers(drivers: Drivers): Promise<void> {
  for (const d of [drivers.ipam, drivers.network, drivers.admin] as unknown[]) {
    const close = (d as { close?: unknown }).close;
    if (typeof close === 'function') await (close as () => unknown).call(d);
  }
}
