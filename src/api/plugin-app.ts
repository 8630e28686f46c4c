import { IncomingMessage, ServerResponse, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { createPluginCalls, methodOf, PluginCallError, replyJson, type PluginAppDeps } from './plugin-calls.js';

export type { PluginAppDeps } from './plugin-calls.js';

/**
 * The plugin API as one express app; the transport (the Unix socket, supertest) is the caller's.
 *
 * Kept cheap on the hot path (server CPU per call measured side by side, README › Benchmarks):
 * - one middleware on '/', which express matches without a regexp, and a map lookup for the method: every
 *   call is `POST /<Interface>.<Method>` (app.post('/:method') cost ~30 µs more per call);
 * - the body read once as raw bytes (Docker sends no Content-Type), parsed once by the route (express.raw()
 *   cost ~55 µs more per call);
 * - no x-powered-by, no etag, no query parsing (Docker sends no query string);
 * - served on a node:http server made with httpOptionsFor(app) (below).
 * Every refusal and failure reaches the error handler, which answers `{"Err"}` as JSON, never express's HTML.
 */
export function createPluginApp(deps: PluginAppDeps): Express {
  const calls = createPluginCalls(deps);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);

  app.use((req: Request, res: Response, next: NextFunction) => {
    const route = calls.routeFor(req.method, req.url);
    if (route === undefined) {
      // Drain whatever body came so that the keep-alive connection stays usable.
      req.resume();
      next(calls.unknownMethod(req.method, req.url));
      return;
    }
    calls.answer(route, req).then((answer) => replyJson(res, 200, answer), next);
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const failure = err instanceof PluginCallError ? err : calls.unexpected(methodOf(req.url), err);
    replyJson(res, failure.status, { Err: failure.message });
  });

  return app;
}

/**
 * node:http server options that make every request and response an instance of the app's own prototypes
 * (`app.request`, `app.response`). express re-prototypes each req and res it is handed (Object.setPrototypeOf);
 * on objects that already have that prototype this is a no-op, and it was the largest part of what express cost
 * per call (measured: README › Benchmarks). Use: createServer({ ...httpOptionsFor(app), ... }, app).
 */
export function httpOptionsFor(app: Express): Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'> {
  function PluginRequest(this: IncomingMessage, socket: Socket): void {
    IncomingMessage.call(this, socket);
  }
  PluginRequest.prototype = app.request;
  // node constructs it as (req, options); both go on to the base.
  function PluginResponse(this: ServerResponse, ...args: unknown[]): void {
    Reflect.apply(ServerResponse, this, args);
  }
  PluginResponse.prototype = app.response;
  return {
    IncomingMessage: PluginRequest as unknown as typeof IncomingMessage,
    ServerResponse: PluginResponse as unknown as typeof ServerResponse,
  };
}
