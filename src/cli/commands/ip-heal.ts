import type { Command } from 'commander';
import type { Settings } from '../../config/settings.js';
import { FlatnetError } from '../../errors.js';
import type { ReconcilePlan } from '../../ipam/services/reconcile-plan.js';
import { addressFlag, cliLogger, settingsFrom, withAdmin } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';
import { coolingFrom } from '../../agents/cooling-options.js';

/*
 * `flatnet ip reconcile`, `ip list --orphans` and the checked `ip release`. They take this host's view from the
 * state dir and the local Docker API themselves (the same as the server's reconcile), so they work while the
 * server is down, and must run on the host whose addresses they judge (root, to read the state dir).
 */

async function reconciler(settings: Settings, stores: Parameters<Parameters<typeof withAdmin>[1]>[1]) {
  const { hostReconciler } = await import('../../agents/ipam-healing.js');
  return hostReconciler(stores.ipam, settings, cliLogger(settings));
}

function planTable(plan: ReconcilePlan, freed: readonly string[] | undefined): string {
  const rows = plan.free.map((a) => [
    a.address,
    a.subnet,
    a.since,
    freed === undefined ? 'orphan' : freed.includes(a.address) ? 'freed' : 'changed meanwhile, kept',
  ]);
  const skipped = plan.skipped.map((s) => `skipped ${s.subnet}: ${s.why}`);
  const table = rows.length
    ? formatTable(['ADDRESS', 'SUBNET', 'SINCE', 'STATE'], rows)
    : 'no orphaned addresses on this host';
  return [table, ...skipped].join('\n');
}

export async function reconcileAction(flags: { dryRun?: boolean; json?: boolean }, cmd: Command): Promise<void> {
  const settings = settingsFrom(cmd);
  const result = await withAdmin(settings, async (_admin, stores) =>
    (await reconciler(settings, stores)).run({ dryRun: flags.dryRun === true }),
  );
  if (flags.json)
    return printJson({
      free: result.plan.free,
      freed: result.freed,
      skipped: result.plan.skipped,
      dryRun: flags.dryRun === true,
    });
  printLine(planTable(result.plan, flags.dryRun ? undefined : result.freed));
}

export async function orphansAction(flags: { json?: boolean }, cmd: Command): Promise<void> {
  const settings = settingsFrom(cmd);
  const plan = await withAdmin(settings, async (_admin, stores) => (await reconciler(settings, stores)).plan());
  if (flags.json) return printJson({ orphans: plan.free, skipped: plan.skipped });
  printLine(planTable(plan, undefined));
}

/** Frees the address (readable record or not); refused while an endpoint on this host holds it, unless forced. */
export async function releaseAction(address: string, flags: { force?: boolean }, cmd: Command): Promise<void> {
  addressFlag('address', address);
  const settings = settingsFrom(cmd);
  const [{ LocalHostView }, { operatorRelease }] = await Promise.all([
    import('../../agents/host-view.js'),
    import('../../ipam/services/host-forget.js'),
  ]);
  const { parseAddress, formatAddress } = await import('../../net/address.js');
  const a = parseAddress(address);
  const canonical = formatAddress(a.family, a.value);
  if (!flags.force) {
    const view = await LocalHostView.fromSettings(settings, cliLogger(settings)).view(new Map());
    if (view.held.has(canonical)) {
      throw new FlatnetError(
        'conflict',
        `${canonical} is held by a live endpoint on this host; remove the container first, or pass --force`,
      );
    }
  }
  const r = await withAdmin(settings, async (_admin, stores) =>
    operatorRelease(stores.ipam, canonical, coolingFrom(settings)),
  );
  if (r.outcome === 'not-assigned') return printLine(`${address} was not assigned; nothing to release`);
  const holder = r.read === 'unreadable' ? 'an unreadable record' : `host ${r.read.assignment.hostId}`;
  printLine(`released ${r.address} (subnet ${r.subnet}, was held by ${holder})`);
}
