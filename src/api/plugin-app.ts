import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorMessage, FlatnetError } from '../errors.js';
import type { IpamDriver } from '../ipam/contract.js';
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

/** Reads the raw body whatever its Content-Type (Docker sends none), up to BODY_LIMIT_BYTES. */
function readBody(req: IncomingMessage): Promise<Buffer> {
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
function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
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

/** `/IpamDriver.RequestAddress?x` → `IpamDriver.RequestAddress` (Docker sends no query string). */
function methodOf(url: string | undefined): string {
  const path = (url ?? '/').split('?', 1)[0] as string;
  return path.startsWith('/') ? path.slice(1) : path;
}

/**
 * The Docker plugin protocol (legacy v1 and managed v2) as a node:http request listener; the transport is the
 * caller's. Every call is `POST /<Interface>.<Method>`, so a map lookup is the whole routing. Served without
 * express on purpose: on this hot path express cost more CPU per call than node's HTTP parsing, zod and the
 * log line together (measured: README › Benchmarks).
 */
export function createPluginApp(deps: PluginAppDeps): RequestListener {
  const log = deps.logger.child({ component: 'api', host_id: deps.hostId });
  const windows = new PoolCreationWindows();
  const routes: PluginRoute[] = [
    constantRoute('Plugin.Activate', { Implements: ['IpamDriver', 'NetworkDriver'] }),
    ...ipamRoutes(deps.ipam, windows),
    ...networkRoutes(deps.network, windows),
  ];
  const byMethod = new Map(routes.map((r) => [r.method, r]));

  async function handleCall(route: PluginRoute, body: Buffer, res: ServerResponse): Promise<void> {
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

  function unknownMethod(req: IncomingMessage, res: ServerResponse, method: string): void {
    const what = req.method === 'POST' ? method : `${req.method ?? '?'} /${method}`;
    // Drain whatever body came so that the keep-alive connection stays usable.
    req.resume();
    pluginCalls.inc({ method: 'unknown', outcome: 'not-found' });
    log.warn({ method: what, status: 404 }, 'plugin call to an unknown method');
    reply(res, 404, { Err: `flatnet does not implement ${what}` });
  }

  // Body-reading failures (too large, aborted, bad encoding) end here, before any route ran.
  function unreadableBody(res: ServerResponse, method: string, err: unknown): void {
    const status = err instanceof BodyError ? err.status : 400;
    const message = `${method}: the request body could not be read (${errorMessage(err)})`;
    pluginCalls.inc({ method: 'unknown', outcome: 'invalid' });
    log.warn({ method, status, error: message }, 'plugin call failed');
    reply(res, status, { Err: message });
  }

  return (req, res) => {
    const method = methodOf(req.url);
    const route = req.method === 'POST' ? byMethod.get(method) : undefined;
    if (route === undefined) return unknownMethod(req, res, method);
    readBody(req)
      .then(
        (body) => handleCall(route, body, res),
        (err: unknown) => unreadableBody(res, method, err),
      )
      // handleCall answers every failure itself; this only keeps a bug from becoming an unhandled rejection.
      .catch((err: unknown) => log.error({ method, error: errorMessage(err) }, 'plugin call crashed'));
  };
}
