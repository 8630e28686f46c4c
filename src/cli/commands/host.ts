import { Command } from 'commander';
import { FlatnetError } from '../../errors.js';
import { hostIdFlag, settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import { printJson, printLine } from '../output.js';
import { coolingFrom } from '../../agents/cooling-options.js';

/** `flatnet host forget HOST`: drop what a retired host holds in etcd. */
export function hostCommand(): Command {
  const group = new Command('host').description('hosts known to the cluster');
  withSettingsFlags(
    group
      .command('forget')
      .description("drop a retired host's pool claims, gateway/aux holds and addresses (refused while it is alive)")
      .argument('<hostId>', 'the retired host')
      .option('--force', 'really drop them (without it: show what would go)')
      .option('--json', 'machine-readable output'),
  ).action(async (host: string, flags: { force?: boolean; json?: boolean }, cmd: Command) => {
    const hostId = hostIdFlag('host', host);
    const settings = settingsFrom(cmd);
    const { hostFootprint, forgetHost } = await import('../../ipam/services/host-forget.js');
    const result = await withAdmin(settings, async (_admin, stores) => {
      // A live lease means its server runs: what it holds is in use, and it would claim it again anyway.
      if (await stores.hosts.isAlive(hostId)) {
        throw new FlatnetError(
          'conflict',
          `host ${hostId} is alive (its server holds a lease); stop its flatnet server first`,
        );
      }
      if (!flags.force) return { forgotten: false, held: await hostFootprint(stores.ipam, hostId) };
      const held = await forgetHost(stores.ipam, hostId, coolingFrom(settings));
      if (!(await stores.hosts.forget(hostId)))
        throw new FlatnetError('conflict', `host ${hostId} registered again meanwhile`);
      return { forgotten: true, held };
    });
    if (flags.json) return printJson(result);
    const { held } = result;
    const lines = [
      ...held.claims.map((c) => `claim   ${c.subnet} (${c.count} network${c.count === 1 ? '' : 's'})`),
      ...held.reservations.map(
        (r) => `${r.kind.padEnd(7)} ${r.address} (${r.subnet}, ${r.count} hold${r.count === 1 ? '' : 's'})`,
      ),
      ...held.addresses.map((a) => `address ${a.address} (${a.subnet})`),
    ];
    const what = lines.length === 0 ? `host ${hostId} holds nothing` : lines.join('\n');
    printLine(
      result.forgotten
        ? `forgot host ${hostId}:\n${what}`
        : `${what}\nnothing changed: pass --force to drop these (only for a host that is gone for good)`,
    );
  });
  return group;
}
