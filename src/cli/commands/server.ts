import { Command } from 'commander';
import { settingsFrom, withSettingsFlags } from '../common.js';

/** `flatnet server`: the plugin itself (what systemd and the managed plugin run). */
export function serverCommand(): Command {
  return withSettingsFlags(
    new Command('server').description('run the Docker plugin (IPAM + network driver) on --socket'),
  ).action(async (_flags: unknown, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const { runServer } = await import('../../server/run.js');
    await runServer(settings);
  });
}
