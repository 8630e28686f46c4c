import { Command } from 'commander';
import { withSettingsFlags } from '../common.js';
import { printLine } from '../output.js';
import { flatnetVersion } from '../../version.js';

export function versionCommand(): Command {
  // takes the common flags like every command (so scripts can pass them uniformly); it needs none of them
  return withSettingsFlags(new Command('version').description('print the flatnet version')).action(() => {
    printLine(`flatnet ${flatnetVersion()} (node ${process.versions.node})`);
  });
}
