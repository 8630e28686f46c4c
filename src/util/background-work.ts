import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/** Resolves once the reply being written now has gone out: a spawn forks the server, so it waits for this. */
export function afterReply(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Calls `fn`; a synchronous throw becomes a rejection, so it is logged like any failure, never uncaught. */
function started(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

export interface PeriodicOptions {
  /** Run once right away as well (default false: the first round comes after one period). */
  immediately?: boolean;
}

/**
 * The work one owner starts and does not wait for: single tasks and periodic rounds, tracked so that tests and
 * shutdown can wait for quiet, cancelled through one signal. Every background loop of the server is built on it,
 * so "what still runs" and "stop in order" have one answer.
 */
export class BackgroundWork {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly controller = new AbortController();

  constructor(private readonly logger: Logger) {}

  /** Aborted by stop(): long work checks it, sleeps take it. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get stopped(): boolean {
    return this.controller.signal.aborted;
  }

  /**
   * Runs `fn` now and tracks it, unless stopped; a failure is logged as `what`, never thrown (background work has
   * nobody to throw to). Returns the tracked promise, which always resolves.
   */
  run(what: string, fn: () => Promise<unknown>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const p = started(fn).then(
      () => undefined,
      (err: unknown) => this.logger.warn({ err: errorMessage(err) }, `${what} failed`),
    );
    return this.track(p);
  }

  /** Like run(), once the reply being written has gone out. */
  afterReply(what: string, fn: () => Promise<unknown>): Promise<void> {
    return this.run(what, () => afterReply().then(fn));
  }

  /** Runs `fn` as run() does after `delayMs`, unless cancelled or stopped first. Returns the cancel. */
  after(what: string, delayMs: number, fn: () => Promise<unknown>): () => void {
    if (this.stopped) return () => undefined;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.run(what, fn);
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
    return () => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
  }

  /** Tracks a promise the caller made (it must not reject: handle its errors first). */
  track(p: Promise<void>): Promise<void> {
    const tracked = p.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    return tracked;
  }

  /**
   * Repeats `round` every `periodMs` until stop(). Rounds never overlap: a tick while one runs is skipped. A failed
   * round is logged once per distinct error and the next tick tries again. Resolves when the first round (with
   * `immediately`) has ended, at once otherwise.
   */
  every(what: string, periodMs: number, round: () => Promise<unknown>, options: PeriodicOptions = {}): Promise<void> {
    if (this.stopped) return Promise.resolve();
    let busy = false;
    let lastError = '';
    const tick = (): Promise<void> => {
      if (busy || this.stopped) return Promise.resolve();
      busy = true;
      const p = started(round).then(
        () => {
          if (lastError !== '') this.logger.info(`${what} works again`);
          lastError = '';
        },
        (err: unknown) => {
          const msg = errorMessage(err);
          if (msg !== lastError) this.logger.warn({ err: msg }, `${what} failed; retried next period`);
          lastError = msg;
        },
      );
      return this.track(p.finally(() => (busy = false)));
    };
    const timer = setInterval(() => void tick(), periodMs);
    timer.unref();
    this.timers.add(timer);
    return options.immediately === true ? tick() : Promise.resolve();
  }

  /** Resolves when nothing started so far (or by what it started) is still running. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** No new rounds or delayed tasks, the signal aborted, then waits for what is still running. Safe to call twice. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.controller.abort();
    await this.idle();
  }
}
