import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { errorMessage, FlatnetError } from '../errors.js';
import { formatSubnet, parseSubnet, type Subnet } from '../net/address.js';
import type { Logger } from '../observability/logger.js';
import type { ChangeFeed } from './change-feed.js';
import type { DashboardData } from './dashboard-data.js';

/**
 * The dashboard's web app: read-only JSON under /api, server-sent events, and the page's own files. Nothing is
 * loaded from elsewhere (the CSP says so to the browser), and no answer carries a setting of this process.
 */

/** The page's files, beside the sources (src/dashboard/static), also where the rpm installs them. */
export function staticDirFor(moduleUrl: string = import.meta.url): string {
  const candidates = ['../../../src/dashboard/static/', './static/'].map((p) => fileURLToPath(new URL(p, moduleUrl)));
  return candidates.find((d) => existsSync(d)) ?? (candidates[0] as string);
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SAFE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
};

/** A pool in a path: its subnet with "/" written "_", as in etcd's keys (10.99.0.0_16). */
const poolParam = z
  .string()
  .max(64)
  .regex(/^[0-9a-fA-F.:]+_\d{1,3}$/, 'a pool is written SUBNET_PREFIX, e.g. 10.99.0.0_16')
  .transform((s, ctx): Subnet => {
    try {
      return parseSubnet(s.replace('_', '/'));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: errorMessage(err) });
      return z.NEVER;
    }
  });
const blockParam = z
  .string()
  .regex(/^[0-9a-f]{1,32}$/, 'a block is its index in lower-case hex')
  .transform((s) => BigInt(`0x${s}`));
const decimal = z
  .string()
  .regex(/^\d{1,40}$/, 'a whole number')
  .transform((s) => BigInt(s));

export const blockPageQuery = z
  .object({
    from: decimal.default(0n),
    count: z.coerce.number().int().min(1).max(64).default(32),
  })
  .strict();
export const searchQuery = z
  .object({
    q: z
      .string()
      .trim()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9_.:/-]+$/, 'letters, digits and _.:/- only'),
  })
  .strict();
const noQuery = z.object({}).strict();
const poolPath = z.object({ pool: poolParam }).strict();
const blockPath = z.object({ pool: poolParam, block: blockParam }).strict();

function parsed<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new FlatnetError('invalid', `bad ${what}: ${where}${issue?.message ?? 'malformed'}`);
  }
  return r.data;
}

const STATUS: Record<FlatnetError['kind'], number> = {
  invalid: 400,
  conflict: 409,
  exhausted: 409,
  'not-found': 404,
  unavailable: 503,
  internal: 500,
};

export interface DashboardAppDeps {
  data: DashboardData;
  feed: ChangeFeed;
  logger: Logger;
  staticDir?: string;
  /** GET /metrics: cluster-wide gauges as Prometheus text, mounted by whoever builds the app. */
  metrics?: RequestHandler;
}

export function createDashboardApp(deps: DashboardAppDeps): Express {
  const { data, feed, logger } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.set(SAFE_HEADERS);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD');
      res.status(405).json({ error: 'the dashboard is read-only: only GET is served' });
      return;
    }
    next();
  });
  app.use('/api', (_req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  const route =
    (fn: (req: Request) => Promise<unknown>): RequestHandler =>
    (req, res, next) => {
      fn(req).then((body) => res.json(body), next);
    };

  app.get(
    '/api/pools',
    route(async (req) => {
      parsed(noQuery, req.query, 'query');
      const o = await data.overview();
      return { pools: o.pools, readAt: o.readAt };
    }),
  );
  app.get(
    '/api/hosts',
    route(async (req) => {
      parsed(noQuery, req.query, 'query');
      const o = await data.overview();
      return { hosts: o.hosts, readAt: o.readAt };
    }),
  );
  app.get(
    '/api/pools/:pool/blocks',
    route(async (req) => {
      const { pool } = parsed(poolPath, req.params, 'path');
      const q = parsed(blockPageQuery, req.query, 'query');
      return data.blockPage(pool, q.from, q.count);
    }),
  );
  app.get(
    '/api/pools/:pool/blocks/:block',
    route(async (req) => {
      const { pool, block } = parsed(blockPath, req.params, 'path');
      parsed(noQuery, req.query, 'query');
      if (block << 8n >= pool.size)
        throw new FlatnetError('not-found', `${formatSubnet(pool)} has no block ${block.toString(16)}`);
      return data.block(pool, block);
    }),
  );
  app.get(
    '/api/search',
    route(async (req) => {
      const { q } = parsed(searchQuery, req.query, 'query');
      return { q, hits: await data.search(q) };
    }),
  );
  app.get('/api/events', (req: Request, res: Response, next: NextFunction) => {
    try {
      parsed(noQuery, req.query, 'query');
    } catch (err) {
      next(err);
      return;
    }
    // HEAD says the stream exists without holding a connection open.
    if (req.method === 'HEAD') {
      res.status(200).type('text/event-stream').end();
      return;
    }
    void feed.subscribe(res);
  });
  // Cluster-wide pool gauges (Prometheus text) are mounted here when given.
  if (deps.metrics) app.get('/metrics', deps.metrics);

  app.use(
    express.static(deps.staticDir ?? staticDirFor(), {
      index: 'index.html',
      dotfiles: 'ignore',
      redirect: false,
      setHeaders: (res) => res.set('Cache-Control', 'no-cache'),
    }),
  );
  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no such path ${req.path}` });
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof FlatnetError) {
      if (err.kind === 'unavailable' || err.kind === 'internal')
        logger.warn({ path: req.path, error: err.message }, 'dashboard: read failed');
      // etcd's own words stay in the log: they name endpoints and errors the page need not show.
      const message = err.kind === 'unavailable' ? 'etcd did not answer; try again' : err.message;
      res.status(STATUS[err.kind]).json({ error: message });
      return;
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // express.static's refusals (a malformed path): the client's mistake
      res.status(status).json({ error: errorMessage(err) });
      return;
    }
    logger.error({ path: req.path, error: errorMessage(err) }, 'dashboard: request failed');
    res.status(500).json({ error: 'internal error; see the dashboard log' });
  });
  return app;
}
