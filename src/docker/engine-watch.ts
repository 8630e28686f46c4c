import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { EngineVersion } from './engine-api.js';

export interface VersionSource {
  version(): Promise<EngineVersion>;
}

export interface EngineWatchOptions {
  /** First retry after a failure; doubled up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** How often a known version is asked again (dockerd may be upgraded while flatnet runs). */
  refreshMs?: number;
}

/**
 * The local engine's version, learned in the background. dockerd starts after flatnet and may itself be waiting
 * on a plugin call, so nothing ever waits on this: current() is whatever is known now, undefined until then.
 */
export class EngineVersionWatch {
  private known: EngineVersion | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private retryMs: number;
  private warned = false;

  constructor(
    private readonly source: VersionSource,
    private readonly logger: Logger,
    private readonly o: EngineWatchOptions = {},
  ) {
    this.retryMs = o.retryMs ?? 1000;
  }

  current(): EngineVersion | undefined {
    return this.known;
  }

  /** Starts asking; returns at once. */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.ask(), ms);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  private async ask(): Promise<void> {
    try {
      const v = await this.source.version();
      if (this.known?.version !== v.version) this.logger.info({ engine: v.version, api: v.apiVersion }, 'Docker engine version learned');
      this.known = v;
      this.warned = false;
      this.retryMs = this.o.retryMs ?? 1000;
      this.schedule(this.o.refreshMs ?? 300_000);
    } catch (err) {
      if (!this.warned) this.logger.debug({ err: errorMessage(err) }, 'Docker engine version not known yet; containers are announced by flatnet meanwhile');
      this.warned = true;
      this.schedule(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, this.o.maxRetryMs ?? 60_000);
    }
  }
}
