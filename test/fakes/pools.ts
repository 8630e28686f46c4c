import { silentLogger } from '../../src/observability/logger.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { MemoryStores } from './memory-stores.js';

/** A fresh in-memory IPAM with one admin range (10.1.0.0/22 unless told), as `flatnet ip-range add` makes it. */
export async function poolWithRange(
  start = '10.1.0.1/22',
  end = '10.1.3.254',
): Promise<{ stores: MemoryStores; admin: IpamAdminService }> {
  const stores = new MemoryStores();
  const admin = new IpamAdminService(stores, silentLogger());
  await admin.addIpRange({ start, end });
  return { stores, admin };
}
