import { createServer, type Server } from 'node:http';
import type { IpamAdmin } from '../ipam/contract.js';
import type { Logger } from '../observability/logger.js';
import { poolSize, poolUsed, registry } from '../observability/metrics.js';
import { errorMessage } from '../errors.js';

export interface MetricsListenerDeps {
  /** "HOST:PORT" (IPv6 hosts in brackets), port 0 for any. */
  listen: string;
  admin: IpamAdmin;
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

/** Pool gauges are read from etcd at scrape time so they show the whole cluster, not this host's calls. */
async function refreshPoolGauges(deps: MetricsListenerDeps): Promise<void> {
  try {
    const pools = await withTimeout(deps.admin.poolSummaries(), deps.timeoutMs, 'reading pool summaries');
    poolSize.reset();
    poolUsed.reset();
    for (const p of pools) {
      poolSize.set({ pool: p.subnet }, Number(p.size));
      poolUsed.set({ pool: p.subnet }, p.used);
    }
  } catch (err) {
    // A scrape must not fail because etcd is slow: the counters are still worth serving.
    deps.logger.warn({ error: errorMessage(err) }, 'pool gauges not refreshed');
  }
}

/** Opt-in HTTP listener: GET /metrics (Prometheus) and GET /healthz (etcd reachability). */
export async function startMetricsListener(deps: MetricsListenerDeps): Promise<{ server: Server; address: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'Content-Type': type }).end(body);
    };
    if (req.method !== 'GET') return send(405, 'application/json', JSON.stringify({ error: 'only GET is served' }));
    if (path === '/metrics') {
      void refreshPoolGauges(deps)
        .then(() => registry.metrics())
        .then((text) => send(200, registry.contentType, text))
        .catch((err: unknown) => send(500, 'text/plain', `metrics unavailable: ${errorMessage(err)}\n`));
      return;
    }
    if (path === '/healthz') {
      void withTimeout(deps.checkEtcd(), deps.timeoutMs, 'the etcd health read')
        .then(() => send(200, 'application/json', JSON.stringify({ status: 'ok', etcd: 'reachable' })))
        .catch((err: unknown) =>
          send(503, 'application/json', JSON.stringify({ status: 'degraded', etcd: 'unreachable', error: errorMessage(err) })),
        );
      return;
    }
    send(404, 'application/json', JSON.stringify({ error: `no such path ${path}; try /metrics or /healthz` }));
  });
  const { host, port } = parseListenAddress(deps.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const address = typeof addr === 'object' && addr !== null ? `${host.includes(':') ? `[${host}]` : host}:${addr.port}` : deps.listen;
  return { server, address };
}
