import type { Etcd3 } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import { IpamAdminService } from '../ipam/services/admin-service.js';
import { IpamDriverService } from '../ipam/services/driver-service.js';
import { EtcdStores } from '../store/etcd-stores.js';

/*
 * The IPAM over an etcd client the caller holds and closes: for tests and benchmarks that play several hosts
 * on one client. The server and the CLI build their stores once instead (server.ts, cli/common.ts).
 */

export class EtcdIpamDriver extends IpamDriverService {
  constructor(o: { etcd: Etcd3; prefix: string; hostId: string; logger: Logger }) {
    super(new EtcdStores(o.etcd, o.prefix, o.logger).ipam, o.hostId, o.logger);
  }
}

export class EtcdIpamAdmin extends IpamAdminService {
  constructor(o: { etcd: Etcd3; prefix: string; logger: Logger }) {
    super(new EtcdStores(o.etcd, o.prefix, o.logger).ipam, o.logger);
  }
}
