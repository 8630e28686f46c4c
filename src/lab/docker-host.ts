import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStartTime } from './proc-tools.js';
import { run, startProcess, waitFor } from './processes.js';
import type { RecordedProcess } from './lab-state.js';
import { type Engine, enginePath } from './engine.js';

/** The repository root, found from this module whether it runs from dist/src/lab or src/lab. */
export function repoRoot(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const up of ['../../..', '../..']) {
    const candidate = join(here, up);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
  }
  throw new Error(`cannot find the flatnet repository above ${here}`);
}

export function launcherScript(): string {
  return join(repoRoot(), 'src/lab/host-launcher.sh');
}

/** Runs dockerd alone in a host's namespaces (the launcher ends in it; a dockerd restart runs it again). */
export function dockerdScript(): string {
  return join(repoRoot(), 'src/lab/host-dockerd.sh');
}

/** The flatnet CLI entry point when it has been built, else undefined. */
export function flatnetCli(): string | undefined {
  const cli = join(repoRoot(), 'dist/src/cli/main.js');
  return existsSync(cli) ? cli : undefined;
}

export const DOCKER = '/usr/bin/docker';

/** Host-side paths of one host's directories (the launcher binds them over /run/docker, ...). */
export function hostPaths(hostDir: string) {
  return {
    dir: hostDir,
    runDocker: join(hostDir, 'run-docker'),
    pluginDir: join(hostDir, 'run-docker/plugins'),
    dockerSocket: join(hostDir, 'run-docker/docker.sock'),
    runContainerd: join(hostDir, 'run-containerd'),
    etcDocker: join(hostDir, 'etc-docker'),
    data: join(hostDir, 'data'),
    state: join(hostDir, 'state'),
    logs: join(hostDir, 'logs'),
    mntCgroup: join(hostDir, 'mnt/cgroup'),
    containerdConfig: join(hostDir, 'containerd.toml'),
    /** Bound over /etc/resolv.conf in the host's mount namespace: the daemons resolve only inside the lab. */
    resolvConf: join(hostDir, 'resolv.conf'),
  };
}

function containerdConfig(hostDir: string): string {
  // Only what dockerd needs: no CRI, no /opt/containerd in the root file system.
  return [
    'version = 2',
    `root = ${JSON.stringify(join(hostDir, 'data/containerd'))}`,
    'state = "/run/containerd"',
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt"]',
    '[grpc]',
    '  address = "/run/containerd/containerd.sock"',
    '',
  ].join('\n');
}

export interface HostSpec {
  hostDir: string;
  netnsPath: string;
  utsPath: string;
  hostName: string;
  /** cgroup name relative to each hierarchy root: Docker's --cgroup-parent. */
  cgroup: string;
  trackingHierarchy: string;
  etcdEndpoints: string[];
  /** Start the flatnet plugin server before dockerd (needs the built CLI). */
  plugin: boolean;
  engine: Engine;
  /** The DNS server the daemons and containers use: an address inside the lab (nothing answers outside it). */
  dns: string;
  /** Extra environment for the host's daemons, e.g. FLATNET_RECONCILE_INTERVAL_MS for the plugin. */
  pluginEnv?: Record<string, string>;
}

export async function prepareHostDirs(hostDir: string, dns: string): Promise<void> {
  const p = hostPaths(hostDir);
  await mkdir(hostDir, { recursive: true });
  await writeFile(p.resolvConf, `nameserver ${dns}\n`);
  for (const d of [p.pluginDir, p.runContainerd, join(p.etcDocker, 'plugins'), p.data, p.state, p.logs, p.mntCgroup]) {
    await mkdir(d, { recursive: true });
  }
  await writeFile(p.containerdConfig, containerdConfig(hostDir));
}

/**
 * Starts containerd, the plugin and dockerd for one host in its namespaces; resolves with the launcher's
 * process (which becomes dockerd) once the daemon answers. The daemons outlive this process (own process
 * group, output to log files) so that a kept bed keeps running; teardown finds them by cgroup and PID.
 */
/** The plugin server's command line for a host (its socket inside the host's /run/docker, its state dir). */
export function pluginCommand(spec: Pick<HostSpec, 'hostDir' | 'etcdEndpoints' | 'hostName'>): string[] {
  const cli = flatnetCli();
  if (cli === undefined) throw new Error('the flatnet CLI is not built (dist/src/cli/main.js): run npx tsc -p .');
  return [
    process.execPath,
    cli,
    'server',
    '--socket',
    '/run/docker/plugins/flatnet.sock',
    '--etcd-endpoints',
    spec.etcdEndpoints.join(','),
    '--host-id',
    spec.hostName,
    '--state-dir',
    hostPaths(spec.hostDir).state,
  ];
}

/** The environment of a host's daemons (containerd, the plugin, dockerd), at start and at a restart. */
export function hostDaemonEnv(spec: HostSpec): NodeJS.ProcessEnv {
  return {
    ...process.env,
    FLATNET_ETCD_ENDPOINTS: spec.etcdEndpoints.join(','),
    FLATNET_HOST_ID: spec.hostName,
    FLATNET_STATE_DIR: hostPaths(spec.hostDir).state,
    // This host's own dockerd (the launcher's -H), not the machine's: the plugin asks it for the engine version.
    FLATNET_DOCKER_SOCKET: '/run/docker/docker.sock',
    FLATNET_LOG_LEVEL: process.env.FLATNET_LOG_LEVEL ?? 'debug',
    PATH: enginePath(spec.engine),
    FLATNET_LAB_DNS: spec.dns,
    // A swarm task would otherwise ask a registry for its image first (moby's own test daemons set this).
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1',
    ...spec.pluginEnv,
  };
}

/** The cgroup.procs file of a host's daemons' cgroup (teardown finds them, and their children, there). */
export function daemonsCgroupProcs(spec: Pick<HostSpec, 'trackingHierarchy' | 'cgroup'>): string {
  return join(spec.trackingHierarchy, spec.cgroup, 'daemons', 'cgroup.procs');
}

/** Waits until the host's dockerd answers; `exited` reports a launcher that died first. */
export async function waitForDockerd(spec: HostSpec, exited: () => string | undefined): Promise<void> {
  await waitFor(
    `dockerd of ${spec.hostName}`,
    async () => {
      const gone = exited();
      if (gone) throw new Error(`the daemons of ${spec.hostName} ${gone}:\n${await logTails(spec.hostDir)}`);
      await run(spec.engine.cli, [
        '-H',
        `unix://${hostPaths(spec.hostDir).dockerSocket}`,
        'version',
        '--format',
        '{{.Server.Version}}',
      ]);
      return true;
    },
    60_000,
    200,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await logTails(spec.hostDir)}`);
  });
}

/**
 * Starts containerd, the plugin and dockerd for one host in its namespaces; resolves with the launcher's
 * process (which becomes dockerd) once the daemon answers. The daemons outlive this process (own process
 * group, output to log files) so that a kept bed keeps running; teardown finds them by cgroup and PID.
 */
export async function startHostDaemons(spec: HostSpec): Promise<RecordedProcess> {
  const p = hostPaths(spec.hostDir);
  await mkdir(dirname(daemonsCgroupProcs(spec)), { recursive: true });
  const pluginArgv = spec.plugin ? pluginCommand(spec) : [];
  const log = openSync(join(p.logs, 'dockerd.log'), 'a');
  const started = startProcess(
    'nsenter',
    [
      `--net=${spec.netnsPath}`,
      `--uts=${spec.utsPath}`,
      '--',
      'unshare',
      '-m',
      '--propagation',
      'private',
      '--',
      'sh',
      launcherScript(),
      spec.hostDir,
      daemonsCgroupProcs(spec),
      `/${spec.cgroup}`,
      ...pluginArgv,
    ],
    { stdio: ['ignore', log, log], detached: true, env: hostDaemonEnv(spec) },
  );
  closeSync(log);
  started.child.unref();
  const startTime = (await processStartTime(started.pid)) ?? '';
  let exited: string | undefined;
  started.child.once('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
  await waitForDockerd(spec, () => exited);
  return { pid: started.pid, startTime, what: `dockerd ${spec.hostName}` };
}

/** The last lines each daemon of a host wrote: for assertion messages. */
export async function logTails(hostDir: string, lines = 30): Promise<string> {
  const out: string[] = [];
  for (const name of ['dockerd.log', 'containerd.log', 'flatnet.log']) {
    const text = await readFile(join(hostPaths(hostDir).logs, name), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    out.push(`--- ${hostDir}/logs/${name} (last ${lines} lines)`, ...text.trimEnd().split('\n').slice(-lines));
  }
  return out.join('\n');
}
