import { Command } from 'commander';
import { countHolders } from '../../ipam/services/cluster-census.js';
import { settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import { printJson, printLine } from '../output.js';
import { buildStatus, formatStatus } from '../status-report.js';

/** `flatnet status`: pools with usage, and every host with its liveness and address count. */
export function statusCommand(): Command {
  return withSettingsFlags(
    new Command('status')
      .description('pools (size/used/conflicts/free) and hosts (up/down, addresses)')
      .option('--json', 'machine-readable output'),
  ).action(async (flags: { json?: boolean }, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const report = await withAdmin(settings, async (admin, stores) => {
      const [pools, hosts] = await Promise.all([admin.poolSummaries(), stores.hosts.list()]);
      return buildStatus(pools, hosts, await countHolders(stores.ipam, { list: async () => hosts }));
    });
    if (flags.json) printJson(report);
    else printLine(formatStatus(report));
  });
}
