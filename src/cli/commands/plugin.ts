import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { FlatnetError, errorMessage } from '../../errors.js';
import { printLine } from '../output.js';

/** The script that assembles the plugin directory, shipped in the checkout and in the installed app alike. */
async function buildScript(): Promise<string> {
  // loaded only here: every other command starts without the lab's modules
  const { repoRoot } = await import('../../lab/docker-host.js');
  return join(repoRoot(), 'plugin-config', 'build-rootfs.sh');
}

/**
 * The build replaces DIR/rootfs: only a new or empty directory, or one an earlier build made (config.json and
 * rootfs/ and nothing else), is accepted, so that a mistyped path never loses anything.
 */
async function checkTarget(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new FlatnetError('invalid', `cannot use ${dir} as the plugin directory: ${errorMessage(err)}`);
  }
  const own = new Set(['config.json', 'rootfs']);
  const foreign = entries.filter((e) => !own.has(e));
  if (foreign.length > 0) {
    throw new FlatnetError(
      'invalid',
      `${dir} holds other files (${foreign.slice(0, 3).join(', ')}): give a new or empty directory, or one an earlier plugin build made`,
    );
  }
}

function runScript(script: string, dir: string): Promise<number> {
  return new Promise((done, fail) => {
    // stdout carries the script's summary line; its warnings go to stderr as they come
    const child = spawn('bash', [script, dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', fail);
    child.on('close', (code) => done(code ?? 1));
  });
}

/** `flatnet plugin build DIR`: the managed (v2) plugin's directory (config.json + rootfs) from this machine. */
export function pluginCommand(): Command {
  const group = new Command('plugin').description('the managed Docker plugin (docker plugin create/set/enable)');
  group
    .command('build')
    .description('assemble the managed plugin directory (config.json + rootfs) from this machine: no registry needed')
    .argument('<dir>', 'the plugin directory to write (new, empty, or made by an earlier build)')
    .option('--name <name>', 'the plugin name the printed next steps use', 'flatnet:latest')
    .action(async (target: string, flags: { name: string }) => {
      const dir = resolve(target);
      const script = await buildScript();
      if (!existsSync(script))
        throw new FlatnetError('not-found', `${script} is missing: this flatnet install cannot build the plugin`);
      await checkTarget(dir);
      const code = await runScript(script, dir);
      if (code !== 0)
        throw new FlatnetError('internal', `the plugin build failed (exit ${code}); its messages are above`);
      printLine(
        [
          'next, on every Docker host (copy the directory there, or build it there):',
          `  docker plugin create ${flags.name} ${dir}`,
          `  docker plugin set ${flags.name} FLATNET_ETCD_ENDPOINTS=http://ETCD_HOST:2379`,
          `  docker plugin enable ${flags.name}`,
        ].join('\n'),
      );
    });
  return group;
}
