import { Command } from 'commander';
import { cliLogger, settingsFrom, withSettingsFlags } from '../common.js';
import { printLine } from '../output.js';

interface RestoreFlags {
  bridge: string;
  parent?: string;
  force?: boolean;
}

/** `flatnet bridge restore`: gives the NIC its addresses back and removes the bridge (undo of the takeover). */
export function bridgeCommand(): Command {
  const group = new Command('bridge').description('the host bridge that holds the LAN NIC');
  withSettingsFlags(
    group
      .command('restore')
      .description('move the addresses back to the NIC and delete the bridge')
      .option('--bridge <name>', 'bridge to undo', 'br0')
      .option('--parent <nic>', 'the NIC the bridge holds (default: its only port that is not a flatnet veth)')
      .option('--force', 'even if container veths are still attached (they lose the LAN)'),
  ).action(async (flags: RestoreFlags, cmd: Command) => {
    const settings = settingsFrom(cmd);
    // Loaded on use: the other commands need none of hostnet.
    const { restoreBridge } = await import('../../hostnet/bridge.js');
    const result = await restoreBridge({
      bridge: flags.bridge,
      ...(flags.parent !== undefined ? { parent: flags.parent } : {}),
      force: flags.force === true,
      logger: cliLogger(settings),
    });
    if (!result.removed) printLine(`${flags.bridge} does not exist; nothing to restore`);
    else printLine(`${flags.bridge} removed; ${result.parent} holds its addresses again`);
  });
  return group;
}
