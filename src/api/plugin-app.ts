import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { FlatnetError } from '../errors.js';
import type { IpamDriver } from '../ipam/ipam-driver.js';
import type { NetworkDriver } from '../netdriver/network-driver.js';
import type { Logger } from '../observability/logger.js';
import { pluginCalls, pluginCallSeconds } from '../observability/metrics.js';
import { PoolCreationWindows } from './address-kind.js';
import { ipamRoutes } from './ipam-routes.js';
import { networkRoutes } from './network-routes.js';
import { constantRoute, type LogFields, type PluginRoute } from './plugin-route.js';

export interface PluginAppDeps {
  ipam: IpamDriver;
  network: NetworkDriver;
  logger: Logger;
  hostId: string;
}

/** Bodies are a few hundred bytes; anything near this is not Docker. */
const BODY_LIMIT = '1mb';

interface Failure {
  status: number;
  message: string;
  outcome: string;
}

/** FlatnetError 'invalid' is the caller's fault (400); any other failure is flatnet's or a dependency's (500). */
function describeFailure(err: unknown, method: string): Failure {
  if (err instanceof FlatnetError) {
    return { status: err.kind === 'invalid' ? 400 : 500, message: err.message, outcome: err.kind };
  }
  return {
    status: 500,
    message: `${method}: internal error in flatnet; the plugin log has the details`,
    outcome: 'internal',
  };
}

/** The Docker plugin protocol (legacy v1 and managed v2) on an express app; transport is the caller's. */
export function createPluginApp(deps: PluginAppDeps): Express {
  const log = deps.logger.child({ component: 'api', host_id: deps.hostId });
  const windows = new PoolCreationWindows();
  const routes: PluginRoute[] = [
    constantRoute('Plugin.Activate', { Implements: ['IpamDriver', 'NetworkDriver'] }),
    ...ipamRoutes(deps.ipam, windows),
    ...networkRoutes(deps.network, windows),
  ];

  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Docker sends no Content-Type: take the bytes whatever the type says, and parse them per route.
  app.use(express.raw({ type: () => true, limit: BODY_LIMIT }));

  for (const route of routes) {
    app.post(`/${route.method}`, (req: Request, res: Response) => {
      void handleCall(route, req, res);
    });
  }

  async function handleCall(route: PluginRoute, req: Request, res: Response): Promise<void> {
    const started = process.hrtime.bigint();
    const fields: LogFields = {};
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let status = 200;
    let outcome = 'ok';
    let failure: unknown;
    let reply: Record<string, unknown>;
    try {
      reply = await route.run(body, fields);
    } catch (err) {
      const f = describeFailure(err, route.method);
      status = f.status;
      outcome = f.outcome;
      failure = err;
      reply = { Err: f.message };
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    pluginCalls.inc({ method: route.method, outcome });
    pluginCallSeconds.observe({ method: route.method }, seconds);
    const line = { method: route.method, status, duration_ms: Math.round(seconds * 1e6) / 1e3, ...fields };
    if (failure === undefined) {
      log.info(line, 'plugin call');
    } else if (failure instanceof FlatnetError) {
      log[status === 400 ? 'warn' : 'error']({ ...line, error: failure.message, error_kind: failure.kind }, 'plugin call failed');
    } else {
      log.error({ ...line, error: reply.Err, err: failure }, 'plugin call failed');
    }
    if (!res.headersSent) res.status(status).json(reply);
  }

  app.use((req: Request, res: Response) => {
    const method = req.method === 'POST' ? req.path.replace(/^\//, '') : `${req.method} ${req.path}`;
    pluginCalls.inc({ method: 'unknown', outcome: 'not-found' });
    log.warn({ method, status: 404 }, 'plugin call to an unknown method');
    res.status(404).json({ Err: `flatnet does not implement ${method}` });
  });

  // Body-reading failures (too large, aborted, bad encoding) end here, before any route ran.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 400;
    const message = `${req.path.replace(/^\//, '')}: the request body could not be read (${(err as Error).message})`;
    pluginCalls.inc({ method: 'unknown', outcome: 'invalid' });
    log.warn({ method: req.path.replace(/^\//, ''), status, error: message }, 'plugin call failed');
    if (!res.headersSent) res.status(status >= 400 && status < 600 ? status : 400).json({ Err: message });
  });

  return app;
}
