import { Command } from 'commander';
import { FlatnetError } from '../../errors.js';
import { settingsFrom, withSettingsFlags } from '../common.js';
import { formatCheck, runChecks } from '../doctor/checks.js';
import { gatherFacts } from '../doctor/gather.js';
import { printLine } from '../output.js';

/** `flatnet doctor`: one line per check, the fix for each failure, non-zero exit if any failed. */
export function doctorCommand(): Command {
  return withSettingsFlags(
    new Command('doctor')
      .description('check etcd, the plugin socket, the bridge, MTUs, forwarding and Docker; print fixes')
      .option('--bridge <name>', 'bridge to check', 'br0')
      .option('--parent <nic>', 'NIC the bridge should hold (default: its only non-flatnet member)')
      .option('--driver <name>', 'plugin name Docker uses', 'flatnet')
      .option('--docker-host <url>', 'Docker daemon to ask'),
  ).action(async (flags: { bridge: string; parent?: string; driver: string; dockerHost?: string }, cmd: Command) => {
    const settings = settingsFrom(cmd);
    const facts = await gatherFacts({
      settings,
      bridge: flags.bridge,
      driver: flags.driver,
      ...(flags.parent ? { parent: flags.parent } : {}),
      ...(flags.dockerHost ? { dockerHost: flags.dockerHost } : {}),
    });
    const results = runChecks(facts);
    for (const r of results) printLine(formatCheck(r));
    const failed = results.filter((r) => r.status === 'fail').map((r) => r.name);
    if (failed.length) throw new FlatnetError('unavailable', `${failed.length} check(s) failed: ${failed.join(', ')}`);
  });
}
