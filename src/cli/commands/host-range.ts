import { Command } from 'commander';
import { addressFlag, rangeFlags, settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';

interface HostRangeFlags {
  ipStart: string;
  ipEnd: string;
  gateway?: string;
}

/** `flatnet host-range add|list|remove`: LAN addresses used by hosts and routers, never given to containers. */
export function hostRangeCommand(): Command {
  const group = new Command('host-range').description(
    'addresses of hosts/routers on the LAN, never given to containers',
  );

  withSettingsFlags(
    group
      .command('add')
      .description("reserve a range for hosts; --gateway sets the pool's default gateway")
      .requiredOption('--ip-start <address>', 'first address, e.g. 192.168.0.1/24')
      .requiredOption('--ip-end <address>', 'last address (inclusive)')
      .option('--gateway <address>', 'the LAN router, inside the range'),
  ).action(async (flags: HostRangeFlags, cmd: Command) => {
    const range = rangeFlags(flags.ipStart, flags.ipEnd);
    const gateway = flags.gateway !== undefined ? { gateway: addressFlag('--gateway', flags.gateway) } : {};
    const settings = settingsFrom(cmd);
    const added = await withAdmin(settings, (admin) => admin.addHostRange({ ...range, ...gateway }));
    const gw = flags.gateway ? `, gateway ${flags.gateway}` : '';
    printLine(`added host range ${added.start}-${added.end} to pool ${added.subnet}${gw}`);
  });

  withSettingsFlags(
    group.command('list').description('list host ranges').option('--json', 'machine-readable output'),
  ).action(async (flags: { json?: boolean }, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const ranges = await withAdmin(settings, (admin) => admin.listHostRanges());
    if (flags.json) return printJson(ranges);
    printLine(
      formatTable(
        ['SUBNET', 'START', 'END', 'CREATED'],
        ranges.map((r) => [r.subnet, r.start, r.end, r.createdAt]),
      ),
    );
  });

  withSettingsFlags(
    group
      .command('remove')
      .description('remove a host range')
      .requiredOption('--ip-start <address>', 'first address of the range')
      .requiredOption('--ip-end <address>', 'last address of the range'),
  ).action(async (flags: HostRangeFlags, cmd: Command) => {
    const range = rangeFlags(flags.ipStart, flags.ipEnd);
    const settings = settingsFrom(cmd);
    await withAdmin(settings, (admin) => admin.removeHostRange(range));
    printLine(`removed host range ${flags.ipStart}-${flags.ipEnd}`);
  });
  return group;
}
