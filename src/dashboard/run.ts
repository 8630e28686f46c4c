import { createServer, type Server } from 'node:http';
import type { RequestHandler } from 'express';
import type { Settings } from '../config/settings.js';
import { IpamAdminService } from '../ipam/services/admin-service.js';
import type { Logger } from '../observability/logger.js';
import { coolingFrom } from '../server/cooling.js';
import { parseListenAddress } from '../server/metrics-listener.js';
import { EtcdStores } from '../store/etcd-stores.js';
import { createDashboardApp } from './app.js';
import { ChangeFeed } from './change-feed.js';
import { DashboardData } from './dashboard-data.js';

export interface RunningDashboard {
  /** http://HOST:PORT/ as bound (port 0 resolved). */
  url: string;
  close(): Promise<void>;
}

/** Builds the dashboard over one etcd client and listens; close() ends the streams, the server and the client. */
/** `metrics`: served at GET /metrics (cluster-wide pool gauges as Prometheus text). */
export async function startDashboard(
  settings: Settings,
  listen: string,
  logger: Logger,
  options: { metrics?: RequestHandler } = {},
): Promise<RunningDashboard> {
  const stores = EtcdStores.open(settings, logger);
  const cooling = coolingFrom(settings);
  const data = new DashboardData({
    admin: new IpamAdminService(stores.ipam, logger, cooling),
    stores: stores.ipam,
    hosts: stores.hosts,
    policy: cooling.policy,
  });
  const feed = new ChangeFeed(
    (onChange) =>
      stores.watchChanges((report) => {
        data.invalidate();
        onChange(report);
      }),
    logger,
    settings.etcdTimeoutMs,
  );
  const app = createDashboardApp({ data, feed, logger, ...(options.metrics ? { metrics: options.metrics } : {}) });
  const { host, port } = parseListenAddress(listen);
  const server: Server = createServer(app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    stores.close();
    throw err;
  }
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/`,
    async close() {
      await feed.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      stores.close();
    },
  };
}
