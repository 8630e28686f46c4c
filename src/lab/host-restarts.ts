import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { postPlugin } from '../util/plugin-client.js';
import {
  daemonsCgroupProcs,
  dockerdScript,
  hostDaemonEnv,
  hostPaths,
  type HostSpec,
  pluginCommand,
  waitForDockerd,
} from './docker-host.js';
import type { RecordedProcess } from './lab-state.js';
import { processStartTime, signal, sleep, stopRecorded } from './proc-tools.js';
import { startProcess, waitFor } from './processes.js';

/*
 * Fault tests' control over one host's daemons: SIGKILL the plugin server and start it again, restart dockerd.
 * Every process is found by the PID file the lab wrote for it and checked against its command line, so that
 * only a process this lab started is ever signalled. A restarted daemon runs in the host's namespaces (entered
 * through its containerd, which lives on) and joins the host's cgroup, where teardown finds it.
 */

const PLUGIN_PID = 'flatnet.pid';

async function cmdline(pid: number): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return text.split('\0').filter((a) => a !== '');
}

/** Dead: gone, or a zombie its parent has not reaped yet (the launcher's plugin is dockerd's child). */
async function dead(pid: number, startTime: string): Promise<boolean> {
  if ((await processStartTime(pid)) !== startTime) return true;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/** A PID from a file the lab wrote, if the process is alive and its command line holds every `marks`. */
async function ownProcess(pidFile: string, marks: string[]): Promise<{ pid: number; startTime: string } | undefined> {
  const text = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
  if (!/^\d+$/.test(text)) return undefined;
  const pid = Number(text);
  const startTime = await processStartTime(pid);
  if (startTime === undefined || (await dead(pid, startTime))) return undefined;
  const argv = await cmdline(pid);
  return marks.every((m) => argv.includes(m)) ? { pid, startTime } : undefined;
}

/** The host's containerd: its namespaces are the host's, and it outlives a plugin kill and a dockerd restart. */
async function containerdPid(spec: HostSpec): Promise<number> {
  const own = await ownProcess(join(spec.hostDir, 'containerd.pid'), [join(spec.hostDir, 'containerd.toml')]);
  if (!own) throw new Error(`${spec.hostName}: its containerd is not running`);
  return own.pid;
}

/** Starts a command in the host's net, uts and mount namespaces, output appended to a log, in the host's cgroup. */
async function startInHost(
  spec: HostSpec,
  argv: string[],
  logName: string,
): Promise<RecordedProcess & { exited: () => string | undefined }> {
  const target = await containerdPid(spec);
  const log = openSync(join(hostPaths(spec.hostDir).logs, logName), 'a');
  const started = startProcess('nsenter', ['-t', String(target), '-m', '-n', '-u', '--', ...argv], {
    stdio: ['ignore', log, log],
    detached: true,
    env: hostDaemonEnv(spec),
  });
  closeSync(log);
  started.child.unref();
  let exited: string | undefined;
  started.child.once('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
  // nsenter without -p execs the command: this PID is the daemon's own.
  await writeFile(daemonsCgroupProcs(spec), String(started.pid));
  return { pid: started.pid, startTime: (await processStartTime(started.pid)) ?? '', what: '', exited: () => exited };
}

/** SIGKILLs the host's plugin server (the process the lab started for it); resolves with its PID once dead. */
export async function killPlugin(spec: HostSpec): Promise<number> {
  const own = await ownProcess(join(spec.hostDir, PLUGIN_PID), [
    'server',
    '--state-dir',
    hostPaths(spec.hostDir).state,
  ]);
  if (!own) throw new Error(`${spec.hostName}: no plugin server of this lab is running`);
  signal(own.pid, 'SIGKILL');
  while (!(await dead(own.pid, own.startTime))) await sleep(20);
  return own.pid;
}

/** Starts the host's plugin server again (after killPlugin); resolves once it answers on its socket. */
export async function startPlugin(spec: HostSpec): Promise<RecordedProcess> {
  const started = await startInHost(spec, pluginCommand(spec), 'flatnet.log');
  await writeFile(join(spec.hostDir, PLUGIN_PID), `${started.pid}\n`);
  const socket = join(hostPaths(spec.hostDir).pluginDir, 'flatnet.sock');
  await waitFor(
    `the plugin of ${spec.hostName} to answer`,
    async () => {
      const gone = started.exited();
      if (gone) throw new Error(`the restarted plugin of ${spec.hostName} ${gone}`);
      return (await postPlugin(socket, 'Plugin.Activate', '{}', { timeoutMs: 1000 })).status === 200 ? true : undefined;
    },
    30_000,
    50,
  );
  return { pid: started.pid, startTime: started.startTime, what: `flatnet ${spec.hostName}` };
}

/**
 * Restarts the host's dockerd as `systemctl restart docker` would: SIGTERM (dockerd stops its containers through
 * the plugin), then the same dockerd again in the host's namespaces. Resolves with the new process once it answers.
 */
export async function restartDockerd(spec: HostSpec): Promise<RecordedProcess> {
  const own = await ownProcess(join(hostPaths(spec.hostDir).runDocker, 'dockerd.pid'), [
    '--data-root',
    join(spec.hostDir, 'data/docker'),
  ]);
  if (!own) throw new Error(`${spec.hostName}: no dockerd of this lab is running`);
  await stopRecorded(own.pid, own.startTime, 30_000);
  const started = await startInHost(spec, ['sh', dockerdScript(), spec.hostDir, `/${spec.cgroup}`], 'dockerd.log');
  await waitForDockerd(spec, started.exited);
  return { pid: started.pid, startTime: started.startTime, what: `dockerd ${spec.hostName}` };
}
