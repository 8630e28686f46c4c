import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { flatnetCli } from '../../src/lab/docker-host.js';
import type { Lab, LabHost } from '../../src/lab/lab.js';

const execFileP = promisify(execFile);

/** Builds the managed plugin's directory (config.json + rootfs) from this machine into dir/<name>, as an operator would: `flatnet plugin build`. */
export async function buildPluginDir(dir: string, name = 'plugin'): Promise<string> {
  const pluginDir = join(dir, name);
  const cli = flatnetCli();
  if (cli === undefined) throw new Error('the flatnet CLI is not built (npx tsc -p .)');
  await execFileP(process.execPath, [cli, 'plugin', 'build', pluginDir], { maxBuffer: 16 << 20 });
  return pluginDir;
}

/**
 * docker plugin create/set/enable on one lab host, with the lab's etcd, that host's id and state and config
 * directories of its own under `work`.
 */
export async function installPlugin(lab: Lab, host: LabHost, name: string, pluginDir: string, work: string, env: string[] = []): Promise<void> {
  const stateDir = join(work, `${host.name}-state`);
  const confDir = join(work, `${host.name}-etc`);
  await mkdir(stateDir, { recursive: true });
  await mkdir(confDir, { recursive: true });
  await host.docker(['plugin', 'create', name, pluginDir]);
  await host.docker([
    'plugin', 'set', name,
    `FLATNET_ETCD_ENDPOINTS=${lab.etcdEndpoints.join(',')}`,
    `FLATNET_HOST_ID=${host.name}`,
    `state.source=${stateDir}`,
    `config.source=${confDir}`,
    ...env,
  ]);
  await host.docker(['plugin', 'enable', '--timeout', '60', name]);
}

/** The plugin's process is dockerd's child, outside the lab's cgroups: stop it through dockerd. */
export async function removePlugin(host: LabHost, name: string): Promise<void> {
  await host.docker(['plugin', 'disable', '-f', name]).catch(() => undefined);
  await host.docker(['plugin', 'rm', '-f', name]).catch(() => undefined);
}
