import { join } from 'node:path';
import type { Settings } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import type { IpamStores } from '../ipam/ports.js';
import type { IpamDriverService } from '../ipam/services/driver-service.js';
import { Reconciler, type ReconcileResult } from '../ipam/services/reconcile.js';
import { ReleaseJournal } from '../ipam/services/release-journal.js';
import type { Logger } from '../observability/logger.js';
import { AtomicTextFile } from '../util/atomic-file.js';
import { coolingFrom } from './cooling.js';
import { LocalHostView } from './host-view.js';

/** The release journal's file in the state dir. */
export function releaseJournalPath(stateDir: string): string {
  return join(stateDir, 'ipam-release-journal.json');
}

export function openReleaseJournal(stateDir: string, logger: Logger): ReleaseJournal {
  // Written on the path of every ReleaseAddress, without fsync: the page cache outlives a killed plugin, and a
  // host that loses power loses its containers too, which the reconcile after the reboot frees.
  return new ReleaseJournal(
    new AtomicTextFile(releaseJournalPath(stateDir), { durable: false }),
    logger.child({ component: 'release-journal' }),
  );
}

export function hostReconciler(
  stores: IpamStores,
  settings: Settings,
  logger: Logger,
  inFlight?: () => ReadonlySet<string>,
): Reconciler {
  const log = logger.child({ component: 'reconcile' });
  return new Reconciler(
    stores,
    settings.hostId,
    LocalHostView.fromSettings(settings, log),
    {
      graceMs: settings.reconcileGraceMs,
      cooling: coolingFrom(settings),
      ...(inFlight ? { inFlight } : {}),
    },
    log,
  );
}

/** What the server runs in the background to heal the IPAM: journal replays and reconciles. */
export interface Healer {
  drainJournal(): Promise<unknown>;
  reconcile(): Promise<ReconcileResult>;
  /**
   * Fills in the host index of a cluster upgraded from the layout without it, step after step, until it is
   * complete, an older version is alive, another host took a step first, or `stopping` says so.
   */
  fillIndex?(stopping: () => boolean): Promise<unknown>;
}

export function ipamHealer(driver: IpamDriverService, stores: IpamStores, settings: Settings, logger: Logger): Healer {
  const reconciler = hostReconciler(stores, settings, logger, () => driver.inFlightSubnets());
  return {
    drainJournal: async () => driver.drainJournal(),
    reconcile: () => reconciler.run(),
    fillIndex: async (stopping) => {
      // A complete index costs one key read here; `fsck --repair` may have started a new pass.
      for (;;) {
        const step = await stores.hostIndex.fillStep();
        if (step !== 'progress' || stopping()) return step;
      }
    },
  };
}

export interface HealLoops {
  stop(): Promise<void>;
}

/**
 * Drains the journal and reconciles at start (in the background: serving never waits on etcd), then drains
 * every releaseRetryMs and reconciles every reconcileIntervalMs. A failed round (etcd away) is logged and the
 * next one tries again; rounds of one kind never overlap.
 */
export function startHealing(healer: Healer, settings: Settings, logger: Logger): HealLoops {
  const log = logger.child({ component: 'heal' });
  const running = new Set<Promise<unknown>>();
  const busy = { drain: false, reconcile: false, fill: false };
  let stopped = false;
  let lastReconcileError = '';
  const round = (kind: 'drain' | 'reconcile' | 'fill'): void => {
    if (stopped || busy[kind]) return;
    busy[kind] = true;
    const p = (async () => {
      try {
        if (kind === 'drain') await healer.drainJournal();
        else if (kind === 'fill') await healer.fillIndex?.(() => stopped);
        else {
          // Each reconcile period also looks whether the host index still needs filling in (one key read).
          round('fill');
          await healer.reconcile();
          if (lastReconcileError !== '') log.info('reconcile works again');
          lastReconcileError = '';
        }
      } catch (err) {
        const msg = errorMessage(err);
        if (kind === 'fill') log.info({ error: msg }, 'host index backfill step failed; tried again next period');
        if (kind === 'reconcile' && msg !== lastReconcileError)
          log.warn({ error: msg }, 'reconcile round failed; retried next period');
        if (kind === 'reconcile') lastReconcileError = msg;
      } finally {
        busy[kind] = false;
      }
    })();
    running.add(p);
    void p.finally(() => running.delete(p));
  };
  const timers: NodeJS.Timeout[] = [];
  void (async () => {
    round('drain');
    await Promise.all(running);
    round('reconcile');
  })();
  timers.push(setInterval(() => round('drain'), settings.releaseRetryMs));
  if (settings.reconcileIntervalMs > 0)
    timers.push(setInterval(() => round('reconcile'), settings.reconcileIntervalMs));
  for (const t of timers) t.unref();
  return {
    async stop() {
      stopped = true;
      for (const t of timers) clearInterval(t);
      await Promise.all(running);
    },
  };
}
