import type { Settings } from '../config/settings.js';
import type { CoolingOptions } from '../ipam/services/allocation-service.js';

/** The cooldown and sticky rules from the settings, for every path that frees an address (driver, reconcile, CLI). */
export function coolingFrom(settings: Pick<Settings, 'releaseCooldown' | 'stickyFor'>): CoolingOptions {
  return {
    policy: { cooldownSec: settings.releaseCooldown, stickySec: settings.stickyFor },
    now: () => Math.floor(Date.now() / 1000),
  };
}
