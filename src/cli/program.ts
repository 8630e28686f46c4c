import { Command } from 'commander';
import { bridgeCommand } from './commands/bridge.js';
import { dashboardCommand } from './commands/dashboard.js';
import { createNetworkCommand } from './commands/create-network.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { fsckCommand } from './commands/fsck.js';
import { hostCommand } from './commands/host.js';
import { hostRangeCommand } from './commands/host-range.js';
import { ipRangeCommand } from './commands/ip-range.js';
import { ipCommand } from './commands/ip.js';
import { pluginCommand } from './commands/plugin.js';
import { serverCommand } from './commands/server.js';
import { statusCommand } from './commands/status.js';
import { versionCommand } from './commands/version.js';
import { flatnetVersion } from '../version.js';

/** Usage errors throw (exitOverride) instead of exiting, so main prints them as one line like any other error. */
function quiet(cmd: Command): void {
  cmd.exitOverride();
  cmd.configureOutput({ outputError: () => undefined });
  for (const sub of cmd.commands) quiet(sub);
}

export function buildProgram(): Command {
  const program = new Command('flatnet')
    .description('flat layer-2 LAN networking for Docker: IPAM + network driver with addresses in etcd')
    .version(flatnetVersion(), '-V, --version')
    .showSuggestionAfterError(true);
  for (const cmd of [
    serverCommand(),
    ipRangeCommand(),
    hostRangeCommand(),
    ipCommand(),
    statusCommand(),
    dashboardCommand(),
    hostCommand(),
    fsckCommand(),
    createNetworkCommand(),
    doctorCommand(),
    bridgeCommand(),
    pluginCommand(),
    demoCommand(),
    versionCommand(),
  ]) {
    program.addCommand(cmd);
  }
  quiet(program);
  return program;
}
