import type { Response } from 'express';
import type { Logger } from '../observability/logger.js';
import { errorMessage } from '../errors.js';
import type { ChangeReport } from '../store/change-watch.js';

/** Starts the etcd watch that feeds the page; stop() ends it. */
export type StartWatch = (onChange: (report: ChangeReport) => void) => Promise<{ stop(): Promise<void> }>;

/** More open pages than this get 503: each costs a socket and a share of every change event. */
export const MAX_CLIENTS = 32;
/** A page that stopped reading is dropped once this much waits for it. */
const MAX_BACKLOG_BYTES = 1 << 20;
/** A comment line now and then keeps proxies and the browser from closing an idle stream. */
const HEARTBEAT_MS = 20_000;

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the etcd watch did not start within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** The report as the page reads it: per pool the changed blocks (hex) or "pool". */
export function changeEvent(report: ChangeReport): { pools: Record<string, string[] | 'pool'>; hosts: boolean } {
  const pools: Record<string, string[] | 'pool'> = {};
  for (const [subnet, blocks] of report.pools) pools[subnet] = blocks === 'pool' ? 'pool' : [...blocks].sort();
  return { pools, hosts: report.hosts };
}

/**
 * Server-sent events to the open pages, from one etcd watch that runs while at least one page listens. Bounded:
 * MAX_CLIENTS pages, each dropped when it falls MAX_BACKLOG_BYTES behind.
 */
export class ChangeFeed {
  private readonly clients = new Set<Response>();
  private watch: Promise<{ stop(): Promise<void> }> | undefined;
  /** The watch once it has started. */
  private started: { stop(): Promise<void> } | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Pages waiting for the watch to start: they count against MAX_CLIENTS too. */
  private waiting = 0;

  /** `startMs`: how long a page waits for the watch to start (etcd away) before it gets 503 and retries. */
  constructor(
    private readonly startWatch: StartWatch,
    private readonly logger: Logger,
    private readonly startMs = 5000,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Serves one GET /api/events. */
  async subscribe(res: Response): Promise<void> {
    if (this.clients.size + this.waiting >= MAX_CLIENTS) {
      res.status(503).json({ error: `at most ${MAX_CLIENTS} pages may follow changes at once` });
      return;
    }
    let gone = false;
    res.on('close', () => {
      gone = true;
      this.drop(res);
    });
    this.waiting++;
    try {
      await withDeadline(this.ensureWatch(), this.startMs);
    } catch (err) {
      this.logger.warn({ error: errorMessage(err) }, 'dashboard: etcd watch not started');
      if (!gone) res.status(503).json({ error: 'etcd did not answer; the page retries' });
      return;
    } finally {
      this.waiting--;
    }
    // The page left while the watch started.
    if (gone) return;
    res.status(200);
    res.set({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    res.flushHeaders();
    // The browser reconnects after this many ms when the stream ends (a restart, etcd away).
    res.write('retry: 3000\n\n');
    this.clients.add(res);
  }

  private drop(res: Response): void {
    if (!this.clients.delete(res)) return;
    if (!res.writableEnded) res.end();
    if (this.clients.size === 0) void this.stopWatch();
  }

  private ensureWatch(): Promise<{ stop(): Promise<void> }> {
    if (!this.watch) {
      const started = this.startWatch((report) => this.broadcast('change', changeEvent(report)));
      this.watch = started;
      started.then(
        (handle) => {
          if (this.watch === started) this.started = handle;
          // Started after every page waiting for it gave up: nobody listens.
          if (this.clients.size + this.waiting === 0 && this.watch === started) void this.stopWatch();
        },
        () => {
          if (this.watch === started) this.watch = undefined;
        },
      );
      this.heartbeat = setInterval(() => this.send(': keep-alive\n\n'), HEARTBEAT_MS);
      this.heartbeat.unref();
    }
    return this.watch;
  }

  /** Stops a started watch; one still starting (etcd away) is stopped when it starts, without waiting for it. */
  private async stopWatch(): Promise<void> {
    const w = this.watch;
    const handle = this.started;
    this.watch = undefined;
    this.started = undefined;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (handle) await handle.stop();
    else if (w) void w.then((h) => h.stop()).catch(() => undefined);
  }

  broadcast(event: string, data: unknown): void {
    this.send(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private send(text: string): void {
    for (const res of [...this.clients]) {
      if (res.writableLength > MAX_BACKLOG_BYTES) {
        this.drop(res);
        continue;
      }
      res.write(text);
    }
  }

  /** Ends every stream and the watch (server shutdown). */
  async close(): Promise<void> {
    for (const res of [...this.clients]) this.drop(res);
    await this.stopWatch();
  }
}
