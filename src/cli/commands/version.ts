import { Command } from 'commander';
import { printLine } from '../output.js';
import { flatnetVersion } from '../version.js';

export function versionCommand(): Command {
  return new Command('version').description('print the flatnet version').action(() => {
    printLine(`flatnet ${flatnetVersion()} (node ${process.versions.node})`);
  });
}
