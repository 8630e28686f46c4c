import { Command } from 'commander';
import { withSettingsFlags } from '../common.js';
import { printLine } from '../output.js';

/** `flatnet demo`: a throw-away multi-host bed on this machine (root), or its teardown. */
export function demoCommand(): Command {
  return withSettingsFlags(
    new Command('demo')
      .description('run the multi-host demo in namespaces on this machine (needs root, docker, etcd)')
      .option('--keep', 'leave the bed running and print its id')
      .option('--teardown <id>', 'remove a bed kept with --keep'),
  ).action(async (flags: { keep?: boolean; teardown?: string }) => {
    if (flags.teardown !== undefined) {
      const { teardownLab } = await import('../../lab/demo.js');
      await teardownLab(flags.teardown);
      printLine(`lab ${flags.teardown} removed`);
      return;
    }
    const { runDemo } = await import('../../lab/demo.js');
    await runDemo({ keep: flags.keep === true, log: (line: string) => printLine(line) });
  });
}
