import { createServer, type Server } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../observability/logger.js';
import { etcdUp, registry } from '../observability/metrics.js';
import { errorMessage } from '../errors.js';

export interface MetricsListenerDeps {
  /** "HOST:PORT" (IPv6 hosts in brackets), port 0 for any. */
  listen: string;
  /** Resolves when etcd answers a quorum read; rejects otherwise. */
  checkEtcd: () => Promise<void>;
  /** Bound on the etcd work one scrape or health check may do. */
  timeoutMs: number;
  logger: Logger;
}

export function parseListenAddress(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(colon + 1)) };
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * etcd reachability as this host sees it, read at scrape time: one key, so a scrape costs the same on every host
 * of any cluster. Nothing cluster-wide is read here (pool and host gauges are cluster-metrics.ts's, served apart).
 */
async function refreshEtcdUp(deps: MetricsListenerDeps): Promise<void> {
  try {
    await withTimeout(deps.checkEtcd(), deps.timeoutMs, 'the etcd health read');
    etcdUp.set(1);
  } catch {
    etcdUp.set(0);
  }
}

/** The express app of the metrics listener: GET /metrics (Prometheus) and GET /healthz (etcd reachability). */
export function createMetricsApp(deps: MetricsListenerDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);
  const json = (res: Response, status: number, body: Record<string, unknown>): void => {
    res.status(status).type('application/json').send(JSON.stringify(body));
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET') return json(res, 405, { error: 'only GET is served' });
    next();
  });
  app.get('/metrics', (_req: Request, res: Response) => {
    void refreshEtcdUp(deps)
      .then(() => registry.metrics())
      .then((text) => res.type(registry.contentType).send(text))
      .catch((err: unknown) =>
        res
          .status(500)
          .type('text/plain')
          .send(`metrics unavailable: ${errorMessage(err)}\n`),
      );
  });
  app.get('/healthz', (_req: Request, res: Response) => {
    void withTimeout(deps.checkEtcd(), deps.timeoutMs, 'the etcd health read')
      .then(() => json(res, 200, { status: 'ok', etcd: 'reachable' }))
      .catch((err: unknown) => json(res, 503, { status: 'degraded', etcd: 'unreachable', error: errorMessage(err) }));
  });
  app.use((req: Request, res: Response) =>
    json(res, 404, { error: `no such path ${req.path}; try /metrics or /healthz` }),
  );
  // Never express's HTML error page: a scraper or a curl gets one JSON line.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    deps.logger.warn({ error: errorMessage(err) }, 'metrics listener request failed');
    json(res, 500, { error: errorMessage(err) });
  });
  return app;
}

/** Opt-in HTTP listener serving createMetricsApp on HOST:PORT. */
export async function startMetricsListener(deps: MetricsListenerDeps): Promise<{ server: Server; address: string }> {
  const server = createServer(createMetricsApp(deps));
  const { host, port } = parseListenAddress(deps.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const address =
    typeof addr === 'object' && addr !== null ? `${host.includes(':') ? `[${host}]` : host}:${addr.port}` : deps.listen;
  return { server, address };
}
