import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { flatnetCli } from '../../src/lab/docker-host.js';
import { LAN, type Lab, type LabHost } from '../../src/lab/lab.js';

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
export async function installPlugin(
  lab: Lab,
  host: LabHost,
  name: string,
  pluginDir: string,
  work: string,
  env: string[] = [],
): Promise<void> {
  const stateDir = join(work, `${host.name}-state`);
  const confDir = join(work, `${host.name}-etc`);
  await mkdir(stateDir, { recursive: true });
  await mkdir(confDir, { recursive: true });
  await host.docker(['plugin', 'create', name, pluginDir]);
  await host.docker([
    'plugin',
    'set',
    name,
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

/**
 * The documented L2 swarm model on the lab's hosts (each with the managed plugin `plugin` enabled): the first host
 * inits the swarm and the others join as workers; every host gets the --config-only network `lanconf`; the manager
 * makes the swarm-scoped flatnet network `network` from it.
 */
export async function formFlatSwarm(lab: Lab, plugin: string, network: string): Promise<void> {
  const [manager, ...workers] = lab.hosts as [LabHost, ...LabHost[]];
  await manager.docker([
    'swarm',
    'init',
    '--advertise-addr',
    manager.lanAddress,
    '--listen-addr',
    `${manager.lanAddress}:2377`,
  ]);
  const token = (await manager.docker(['swarm', 'join-token', '-q', 'worker'])).trim();
  for (const w of workers)
    await w.docker(['swarm', 'join', '--token', token, '--advertise-addr', w.lanAddress, `${manager.lanAddress}:2377`]);
  for (const h of lab.hosts) {
    await h.docker([
      'network',
      'create',
      '--config-only',
      '--ipam-driver',
      plugin,
      '--subnet',
      LAN.subnet,
      '--gateway',
      LAN.gateway,
      '--ip-range',
      LAN.containerRange,
      '-o',
      'parent=eth0',
      'lanconf',
    ]);
  }
  await manager.docker(['network', 'create', '-d', plugin, '--scope', 'swarm', '--config-from', 'lanconf', network]);
}
