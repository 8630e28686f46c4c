import { createServer, type Server } from 'node:http';
import type { RequestHandler } from 'express';
import type { Settings } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { IpamAdminService } from '../ipam/services/admin-service.js';
import { ClusterCensus } from '../ipam/services/cluster-census.js';
import { clusterMetricsHandler } from '../observability/cluster-metrics.js';
import type { Logger } from '../observability/logger.js';
import { coolingFrom } from '../agents/cooling-options.js';
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

/** GET /metrics: the cluster-wide gauges; 503 while etcd does not answer (Prometheus then marks the target down). */
function clusterMetricsRoute(source: ClusterCensus, logger: Logger): RequestHandler {
  const scrape = clusterMetricsHandler(source);
  return (_req, res) => {
    scrape().then(
      ({ contentType, body }) => res.type(contentType).send(body),
      (err: unknown) => {
        logger.warn({ err: errorMessage(err) }, 'cluster metrics: etcd did not answer');
        res.status(503).type('text/plain').send('etcd did not answer\n');
      },
    );
  };
}

/**
 * Builds the dashboard over one etcd client and listens: the page, its API and the cluster-wide Prometheus gauges
 * (one process per cluster serves them, so no host pays for a cluster-wide read). close() ends the streams, the
 * server and the client.
 */
export async function startDashboard(settings: Settings, listen: string, logger: Logger): Promise<RunningDashboard> {
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
  const metrics = clusterMetricsRoute(new ClusterCensus(stores.ipam, stores.hosts, cooling), logger);
  const app = createDashboardApp({ data, feed, logger, metrics });
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
