import { join } from 'node:path';
import type { Settings } from '../config/settings.js';
import type { IpamStores } from '../ipam/ports.js';
import type { IpamDriverService } from '../ipam/services/driver-service.js';
import { type HostViewSource, Reconciler, type ReconcileResult } from '../ipam/services/reconcile.js';
import { ReleaseJournal } from '../ipam/services/release-journal.js';
import type { Logger } from '../observability/logger.js';
import {
  hostHeld,
  reconcileCandidates,
  reconcileFreed,
  reconcileRounds,
  reconcileSkippedPools,
} from '../observability/metrics.js';
import { AtomicTextFile } from '../util/atomic-file.js';
import { BackgroundWork } from '../util/background-work.js';
import { coolingFrom } from './cooling-options.js';
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

/** `view`: this host's endpoints (default: the state dir and the local dockerd). */
export function hostReconciler(
  stores: IpamStores,
  settings: Settings,
  logger: Logger,
  inFlight?: () => ReadonlySet<string>,
  view?: HostViewSource,
): Reconciler {
  const log = logger.child({ component: 'reconcile' });
  return new Reconciler(
    stores,
    settings.hostId,
    view ?? LocalHostView.fromSettings(settings, log),
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

/** What this host holds per pool after a round: the addresses the round read as this host's, less those it freed. */
export function heldPerPool(result: ReconcileResult): Map<string, number> {
  const freed = new Set(result.freed);
  const out = new Map<string, number>();
  for (const a of [...result.plan.kept.map((k) => k.address), ...result.plan.free])
    if (!freed.has(a.address)) out.set(a.subnet, (out.get(a.subnet) ?? 0) + 1);
  return out;
}

/** The round's gauges and counters; the held gauge is replaced whole, so a pool this host left drops out. */
export function recordReconcileRound(result: ReconcileResult): void {
  reconcileRounds.inc({ outcome: 'ok' });
  reconcileCandidates.inc(result.plan.free.length);
  reconcileFreed.inc(result.freed.length);
  reconcileSkippedPools.set(result.plan.skipped.length);
  hostHeld.reset();
  for (const [pool, n] of heldPerPool(result)) hostHeld.set({ pool }, n);
}

export function ipamHealer(
  driver: IpamDriverService,
  stores: IpamStores,
  settings: Settings,
  logger: Logger,
  view?: HostViewSource,
): Healer {
  const reconciler = hostReconciler(stores, settings, logger, () => driver.inFlightSubnets(), view);
  return {
    drainJournal: async () => driver.drainJournal(),
    reconcile: async () => {
      try {
        const result = await reconciler.run();
        recordReconcileRound(result);
        return result;
      } catch (err) {
        reconcileRounds.inc({ outcome: 'failed' });
        throw err;
      }
    },
    fillIndex: async (stopping) => {
      // A complete index costs one key read here; `fsck --repair` may have started a new pass.
      for (;;) {
        const step = await stores.hostIndex.fillStep();
        if (step !== 'progress' || stopping()) return step;
      }
    },
  };
}

/**
 * Drains the journal and then reconciles at start (in the background: serving never waits on etcd), then drains
 * every releaseRetryMs and reconciles every reconcileIntervalMs; the host index backfill looks for work at the
 * same times (one key read once complete). A failed round (etcd away) is logged and the next one tries again;
 * rounds of one kind never overlap. stop() ends them all and waits for running rounds.
 */
export function startHealing(healer: Healer, settings: Settings, logger: Logger): BackgroundWork {
  const work = new BackgroundWork(logger.child({ component: 'heal' }));
  const firstDrain = work.every('journal drain', settings.releaseRetryMs, () => healer.drainJournal(), {
    immediately: true,
  });
  const fill = healer.fillIndex?.bind(healer);
  const fillRound = (): Promise<unknown> => fill?.(() => work.stopped) ?? Promise.resolve();
  const reconcile = (): Promise<unknown> => healer.reconcile();
  const period = settings.reconcileIntervalMs;
  void firstDrain.then(() => {
    if (period > 0) {
      void work.every('host index backfill', period, fillRound, { immediately: true });
      void work.every('reconcile', period, reconcile, { immediately: true });
    } else {
      void work.run('host index backfill', fillRound);
      void work.run('reconcile at start', reconcile);
    }
  });
  return work;
}
