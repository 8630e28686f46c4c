import { Command } from 'commander';
import { settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import { formatTable, printJson, printLine } from '../output.js';

/** `flatnet fsck [--repair]`: block bits vs address records vs claims, as a plain report. */
export function fsckCommand(): Command {
  return withSettingsFlags(
    new Command('fsck')
      .description("check the pools' bitmaps against their address records and claims")
      .option(
        '--repair',
        'make block bits and the host index agree with the address records (everything else is reported only)',
      )
      .option('--json', 'machine-readable output'),
  ).action(async (flags: { repair?: boolean; json?: boolean }, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const { fsck, repairBits, repairIndex } = await import('../../ipam/services/fsck.js');
    const result = await withAdmin(settings, async (_admin, stores) => {
      const known = new Set((await stores.hosts.list()).map((h) => h.hostId));
      const findings = await fsck(stores.ipam, known);
      const repaired = flags.repair ? await repairBits(stores.ipam, findings) : 0;
      const indexRepaired = flags.repair ? await repairIndex(stores.ipam, findings) : 0;
      return { findings, repaired, indexRepaired };
    });
    if (flags.json) return printJson(result);
    if (result.findings.length === 0) return printLine('fsck: no problems found');
    printLine(
      formatTable(
        ['POOL', 'PROBLEM', 'ADDRESS/HOST'],
        result.findings.map((f) => [f.subnet, f.kind, f.hostId === undefined ? f.what : `${f.what} (${f.hostId})`]),
      ),
    );
    if (flags.repair) {
      printLine(`repaired the bits of ${result.repaired} block(s)`);
      if (result.findings.some((f) => f.kind === 'index-missing'))
        printLine('host index entries missing: a new backfill pass started (the servers fill them in)');
    } else if (
      result.findings.some(
        (f) => f.kind.startsWith('index-') || f.kind.endsWith('-bit') || f.kind === 'bit-without-record',
      )
    )
      printLine('run `flatnet fsck --repair` to fix the bits and the host index');
  });
}
