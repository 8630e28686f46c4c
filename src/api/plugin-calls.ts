import type { IncomingMessage, ServerResponse } from 'node:http';
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
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** A refusal or failure that is already logged and counted: what is left is to answer `{"Err": message}`. */
export class PluginCallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PluginCallError';
  }
}

class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads the raw body once, whatever its Content-Type (Docker sends none; argument-less calls send none at all),
 * up to BODY_LIMIT_BYTES. The route parses it once; nothing before it looks at the bytes.
 */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > BODY_LIMIT_BYTES) {
        // Stop keeping the bytes but let them drain, so that the 413 reply (which closes the connection) is read.
        req.off('data', onData);
        chunks.length = 0;
        req.resume();
        reject(new BodyError(413, `the body is larger than ${BODY_LIMIT_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', (err) => reject(new BodyError(400, err.message)));
  });
}

/** JSON reply written directly (res.json's content negotiation is not needed: Docker reads any JSON). */
export function replyJson(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  // After a 413 the rest of that body is still coming: the connection is not reused.
  if (status === 413) res.shouldKeepAlive = false;
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
export function methodOf(url: string | undefined): string {
  const path = (url ?? '/').split('?', 1)[0] as string;
  return path.startsWith('/') ? path.slice(1) : path;
}

/**
 * The Docker plugin protocol (legacy v1 and managed v2) apart from any HTTP framework: the method map, one log
 * line and the metrics per call, and the mapping of failures to an HTTP status with `Err`.
 */
export interface PluginCalls {
  /** The route for `<httpMethod> <url>`: only `POST /<Interface>.<Method>` of a known method has one. */
  routeFor(httpMethod: string | undefined, url: string | undefined): PluginRoute | undefined;
  /** Runs the route on the raw body; resolves the 200 reply or rejects with a PluginCallError. */
  call(route: PluginRoute, body: Buffer): Promise<Record<string, unknown>>;
  /** Reads the request's body and runs the route on it (call); an unreadable body rejects as unreadableBody. */
  answer(route: PluginRoute, req: IncomingMessage): Promise<Record<string, unknown>>;
  /** 404 for a method flatnet does not implement (or not POSTed). */
  unknownMethod(httpMethod: string | undefined, url: string | undefined): PluginCallError;
  /** The body could not be read (too large, aborted): no route ran. */
  unreadableBody(method: string, err: unknown): PluginCallError;
  /** Anything else that reached the error handler: a bug, answered with a generic 500. */
  unexpected(method: string, err: unknown): PluginCallError;
}

export function createPluginCalls(deps: PluginAppDeps): PluginCalls {
  const log = deps.logger.child({ component: 'api', host_id: deps.hostId });
  const windows = new PoolCreationWindows();
  const routes: PluginRoute[] = [
    constantRoute('Plugin.Activate', { Implements: ['IpamDriver', 'NetworkDriver'] }),
    ...ipamRoutes(deps.ipam, windows),
    ...networkRoutes(deps.network, windows, deps.ipam),
  ];
  const byMethod = new Map(routes.map((r) => [r.method, r]));

  async function call(route: PluginRoute, body: Buffer): Promise<Record<string, unknown>> {
    const started = process.hrtime.bigint();
    const fields: LogFields = {};
    let answer: Record<string, unknown>;
    try {
      answer = await route.run(body, fields);
    } catch (err) {
      const f = describeFailure(err, route.method);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      pluginCalls.inc({ method: route.method, outcome: f.outcome });
      pluginCallSeconds.observe({ method: route.method }, seconds);
      const line = { method: route.method, status: f.status, duration_ms: Math.round(seconds * 1e6) / 1e3, ...fields };
      if (err instanceof FlatnetError) {
        log[f.status === 400 ? 'warn' : 'error'](
          { ...line, error: err.message, error_kind: err.kind },
          'plugin call failed',
        );
      } else {
        log.error({ ...line, error: f.message, err }, 'plugin call failed');
      }
      throw new PluginCallError(f.status, f.message);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    pluginCalls.inc({ method: route.method, outcome: 'ok' });
    pluginCallSeconds.observe({ method: route.method }, seconds);
    log.info(
      { method: route.method, status: 200, duration_ms: Math.round(seconds * 1e6) / 1e3, ...fields },
      'plugin call',
    );
    return answer;
  }

  const calls: PluginCalls = {
    routeFor: (httpMethod, url) => (httpMethod === 'POST' ? byMethod.get(methodOf(url)) : undefined),
    call,
    answer: (route, req) =>
      readBody(req).then(
        (body) => call(route, body),
        (err: unknown) => {
          throw calls.unreadableBody(route.method, err);
        },
      ),
    unknownMethod(httpMethod, url) {
      const method = methodOf(url);
      const what = httpMethod === 'POST' ? method : `${httpMethod ?? '?'} /${method}`;
      pluginCalls.inc({ method: 'unknown', outcome: 'not-found' });
      log.warn({ method: what, status: 404 }, 'plugin call to an unknown method');
      return new PluginCallError(404, `flatnet does not implement ${what}`);
    },
    unreadableBody(method, err) {
      const status = err instanceof BodyError ? err.status : 400;
      const message = `${method}: the request body could not be read (${errorMessage(err)})`;
      pluginCalls.inc({ method: 'unknown', outcome: 'invalid' });
      log.warn({ method, status, error: message }, 'plugin call failed');
      return new PluginCallError(status, message);
    },
    unexpected(method, err) {
      pluginCalls.inc({ method: 'unknown', outcome: 'internal' });
      log.error({ method, status: 500, error: errorMessage(err), err }, 'plugin call crashed');
      return new PluginCallError(500, `${method}: internal error in flatnet; the plugin log has the details`);
    },
  };
  return calls;
}
