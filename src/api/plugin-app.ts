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
const BODY_LIMIT_BYTES = 1024 * 1024;

class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads the raw body whatever its Content-Type (Docker sends none). Done by hand rather than with express.raw:
 * the body-parser stack cost as much CPU per call as the rest of the route on this hot path.
 */
function readBody(req: Request): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) {
        reject(new BodyError(413, `the body is larger than ${BODY_LIMIT_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', (err) => reject(new BodyError(400, err.message)));
  });
}

/** JSON reply written directly (res.json's content negotiation is not needed: Docker reads any JSON). */
function reply(res: Response, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

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
  // Plugin calls carry no query string; express would parse one on every request.
  app.set('query parser', false);
  const byMethod = new Map(routes.map((r) => [r.method, r]));

  // One route and a map lookup: express matching ~25 routes one by one showed up in the per-call cost.
  app.post('/:method', (req: Request, res: Response, next: NextFunction) => {
    const route = byMethod.get(req.params.method ?? '');
    if (route === undefined) return next();
    readBody(req).then(
      (body) => handleCall(route, body, res),
      (err: unknown) => next(err),
    );
  });

  async function handleCall(route: PluginRoute, body: Buffer, res: Response): Promise<void> {
    const started = process.hrtime.bigint();
    const fields: LogFields = {};
    let status = 200;
    let outcome = 'ok';
    let failure: unknown;
    let answer: Record<string, unknown>;
    try {
      answer = await route.run(body, fields);
    } catch (err) {
      const f = describeFailure(err, route.method);
      status = f.status;
      outcome = f.outcome;
      failure = err;
      answer = { Err: f.message };
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
      log.error({ ...line, error: answer.Err, err: failure }, 'plugin call failed');
    }
    reply(res, status, answer);
  }

  app.use((req: Request, res: Response) => {
    const method = req.method === 'POST' ? req.path.replace(/^\//, '') : `${req.method} ${req.path}`;
    pluginCalls.inc({ method: 'unknown', outcome: 'not-found' });
    log.warn({ method, status: 404 }, 'plugin call to an unknown method');
    reply(res, 404, { Err: `flatnet does not implement ${method}` });
  });

  // Body-reading failures (too large, aborted, bad encoding) end here, before any route ran.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 400;
    const message = `${req.path.replace(/^\//, '')}: the request body could not be read (${(err as Error).message})`;
    pluginCalls.inc({ method: 'unknown', outcome: 'invalid' });
    log.warn({ method: req.path.replace(/^\//, ''), status, error: message }, 'plugin call failed');
    reply(res, status >= 400 && status < 600 ? status : 400, { Err: message });
  });

  return app;
}
