import type { Command } from 'commander';
import { addressFlag, hostIdFlag, settingsFrom, subnetFlag, withAdmin } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';

/** `flatnet ip list --conflicts` and `flatnet ip clear-conflict`: addresses machines outside flatnet use. */

export async function conflictsAction(
  flags: { subnet?: string; host?: string; json?: boolean },
  cmd: Command,
): Promise<void> {
  const filter = flags.subnet !== undefined ? { subnet: subnetFlag('--subnet', flags.subnet) } : {};
  const seenBy = flags.host !== undefined ? hostIdFlag('--host', flags.host) : undefined;
  const settings = settingsFrom(cmd);
  const found = (await withAdmin(settings, (admin) => admin.listConflicts(filter))).filter(
    (c) => seenBy === undefined || c.seenBy === seenBy,
  );
  if (flags.json) return printJson(found);
  if (found.length === 0) return printLine('no address conflicts recorded');
  printLine(
    formatTable(
      ['ADDRESS', 'SUBNET', 'MAC', 'SEEN AT', 'SEEN BY'],
      found.map((c) => [c.address, c.subnet, c.mac ?? '', c.seenAt, c.seenBy]),
    ),
  );
}

export async function clearConflictAction(address: string, _flags: unknown, cmd: Command): Promise<void> {
  addressFlag('address', address);
  const settings = settingsFrom(cmd);
  const cleared = await withAdmin(settings, (admin) => admin.clearConflict(address));
  printLine(
    `cleared the conflict on ${cleared.address} (subnet ${cleared.subnet}${cleared.mac ? `, MAC ${cleared.mac}` : ''}, seen ${cleared.seenAt} by ${cleared.seenBy}); it is free again`,
  );
}
