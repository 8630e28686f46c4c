import { Command } from 'commander';
import { rangeFlags, settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';

interface RangeFlags {
  ipStart: string;
  ipEnd: string;
}

/** `flatnet ip-range add|list|remove`: the container address ranges (oam-docker-ipam style start/end). */
export function ipRangeCommand(): Command {
  const group = new Command('ip-range').description('container address ranges (pools are created from them)');

  withSettingsFlags(
    group
      .command('add')
      .description('add a range; the pool subnet comes from the prefix length (192.168.0.100/24)')
      .requiredOption('--ip-start <address>', 'first address, e.g. 192.168.0.100/24')
      .requiredOption('--ip-end <address>', 'last address (inclusive), e.g. 192.168.0.200/24'),
  ).action(async (flags: RangeFlags, cmd: Command) => {
    const range = rangeFlags(flags.ipStart, flags.ipEnd);
    const settings = settingsFrom(cmd);
    const added = await withAdmin(settings, (admin) => admin.addIpRange(range));
    printLine(`added range ${added.start}-${added.end} (${added.size} addresses) to pool ${added.subnet}`);
  });

  withSettingsFlags(
    group.command('list').description('list ranges').option('--json', 'machine-readable output'),
  ).action(async (flags: { json?: boolean }, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const ranges = await withAdmin(settings, (admin) => admin.listIpRanges());
    if (flags.json) return printJson(ranges);
    printLine(
      formatTable(
        ['SUBNET', 'START', 'END', 'SIZE', 'ORIGIN', 'CREATED'],
        ranges.map((r) => [r.subnet, r.start, r.end, r.size, r.origin, r.createdAt]),
      ),
    );
  });

  withSettingsFlags(
    group
      .command('remove')
      .description('remove a range (refused while any of its addresses is assigned)')
      .requiredOption('--ip-start <address>', 'first address of the range')
      .requiredOption('--ip-end <address>', 'last address of the range'),
  ).action(async (flags: RangeFlags, cmd: Command) => {
    const range = rangeFlags(flags.ipStart, flags.ipEnd);
    const settings = settingsFrom(cmd);
    await withAdmin(settings, (admin) => admin.removeIpRange(range));
    printLine(`removed range ${flags.ipStart}-${flags.ipEnd}`);
  });
  return group;
}
