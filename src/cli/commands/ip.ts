import { Command } from 'commander';
import { addressFlag, hostIdFlag, settingsFrom, subnetFlag, withAdmin, withSettingsFlags } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';

/** `flatnet ip list|release`: the addresses handed to containers, cluster-wide. */
export function ipCommand(): Command {
  const group = new Command('ip').description('addresses assigned to containers');

  withSettingsFlags(
    group
      .command('list')
      .description('list assigned addresses')
      .option('--subnet <cidr>', 'only this pool')
      .option('--host <hostId>', 'only addresses held by this host')
      .option('--json', 'machine-readable output'),
  ).action(async (flags: { subnet?: string; host?: string; json?: boolean }, cmd: Command) => {
    const filter = {
      ...(flags.subnet !== undefined ? { subnet: subnetFlag('--subnet', flags.subnet) } : {}),
      ...(flags.host !== undefined ? { hostId: hostIdFlag('--host', flags.host) } : {}),
    };
    const settings = settingsFrom(cmd);
    const assigned = await withAdmin(settings, (admin) => admin.listAssignments(filter));
    if (flags.json) return printJson(assigned);
    printLine(
      formatTable(
        ['ADDRESS', 'SUBNET', 'HOST', 'SINCE', 'MAC', 'ENDPOINT'],
        assigned.map((a) => [a.address, a.subnet, a.hostId, a.since, a.macAddress ?? '', a.endpointName ?? '']),
      ),
    );
  });

  withSettingsFlags(
    group
      .command('release')
      .description('free an assigned address whoever holds it (only for addresses you know are unused)')
      .argument('<address>', 'the address to free'),
  ).action(async (address: string, _flags: unknown, cmd: Command) => {
    addressFlag('address', address);
    const settings = settingsFrom(cmd);
    const freed = await withAdmin(settings, (admin) => admin.releaseAddress(address));
    if (freed === undefined) printLine(`${address} was not assigned; nothing to release`);
    else printLine(`released ${freed.address} (subnet ${freed.subnet}, was held by host ${freed.hostId})`);
  });
  return group;
}
