import { Command } from 'commander';
import { FlatnetError } from '../../errors.js';
import { cliLogger, settingsFrom, withSettingsFlags } from '../common.js';
import { bridgeParent } from '../doctor/checks.js';
import { gatherBridge } from '../doctor/gather.js';
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
      .option('--parent <nic>', 'the NIC the bridge holds (default: its only non-flatnet port)')
      .option('--force', 'even if container veths are still attached (they lose the LAN)'),
  ).action(async (flags: RestoreFlags, cmd: Command) => {
    const settings = settingsFrom(cmd);
    let parent = flags.parent;
    if (parent === undefined) {
      const fact = await gatherBridge(flags.bridge, undefined);
      if (fact.bridge === undefined) {
        printLine(`${flags.bridge} does not exist; nothing to restore`);
        return;
      }
      parent = bridgeParent(fact)?.name;
      if (parent === undefined) throw new FlatnetError('invalid', `cannot tell which NIC ${flags.bridge} holds; name it with --parent`);
    }
    const { restoreBridge } = await import('../../hostnet/bridge.js');
    await restoreBridge({ bridge: flags.bridge, parent, force: flags.force === true, logger: cliLogger(settings) });
    printLine(`${flags.bridge} removed; ${parent} holds its addresses again`);
  });
  return group;
}
