import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deleteNetns, deleteUts } from './lan.js';
import { isLabId, labNames } from './names.js';
import { readLabState, type LabState } from './lab-state.js';
import { cgroupDirs, killCgroup, processesMentioning, removeCgroup, signal, stopRecorded } from './proc-tools.js';
import { run } from './processes.js';
import { DOCKER } from './docker-host.js';

/** PIDs named by containerd's task files (init.pid of each container, shim.pid of its shim). */
async function containerdTaskPids(stateDir: string): Promise<number[]> {
  const base = join(stateDir, 'io.containerd.runtime.v2.task');
  const pids: number[] = [];
  for (const ns of await readdir(base).catch(() => [])) {
    for (const task of await readdir(join(base, ns)).catch(() => [])) {
      for (const file of ['init.pid', 'shim.pid']) {
        const text = await readFile(join(base, ns, task, file), 'utf8').catch(() => '');
        if (/^\d+$/.test(text.trim())) pids.push(Number(text.trim()));
      }
    }
  }
  return pids;
}

async function removeAllContainers(dockerSocket: string): Promise<void> {
  const docker = (args: string[]) => run(DOCKER, ['-H', `unix://${dockerSocket}`, ...args]);
  try {
    const ids = (await docker(['ps', '-aq'])).split('\n').filter((l) => l !== '');
    if (ids.length > 0) await docker(['rm', '-f', ...ids]);
  } catch {
    // the daemon is gone or stuck: the cgroup sweep below ends its containers
  }
}

/**
 * Removes everything a bed made: daemons first (dockerd gets the chance to stop its containers through the
 * plugin), then whatever is left in its cgroups or named by containerd's pid files (shims ignore SIGTERM),
 * etcd, the cgroups, namespaces, the UTS files and the directory. Mounts die with the hosts' private mount
 * namespaces. Only processes the bed recorded, or that sit in its own cgroups, are signalled.
 */
export async function teardownState(state: LabState): Promise<void> {
  const names = labNames(state.id);
  // Removing containers through Docker runs the plugin's Leave/DeleteEndpoint/Release paths and is far
  // quicker than letting a stopping daemon wait out each container's stop timeout.
  await Promise.all(state.dockerSockets.map((s) => removeAllContainers(s)));
  const dockerds = state.processes.filter((p) => p.what.startsWith('dockerd'));
  await Promise.all(dockerds.map((p) => stopRecorded(p.pid, p.startTime, 15_000)));
  for (const dir of state.containerdStateDirs) {
    for (const pid of await containerdTaskPids(dir)) {
      // A stale pid file may name a reused PID: kill it only while it is still in the bed's cgroups.
      const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
      if (cgroup.includes(names.bed)) signal(pid, 'SIGKILL');
    }
  }
  for (const cg of state.cgroups) await killCgroup(cg);
  await Promise.all(
    state.processes.filter((p) => !p.what.startsWith('dockerd')).map((p) => stopRecorded(p.pid, p.startTime, 5_000)),
  );
  for (const cg of state.cgroups) await removeCgroup(cg);
  for (const ns of state.netns) await deleteNetns(ns);
  for (const f of state.utsFiles) await deleteUts(f);
  await rm(state.dir, { recursive: true, force: true });
}

/** Tears a bed down from its recorded state file (e.g. a demo bed kept with --keep). */
export async function teardownLab(id: string): Promise<void> {
  if (!isLabId(id)) throw new Error(`"${id}" is not a lab id (six hex digits, as printed when the bed started)`);
  const state = await readLabState(labNames(id).dir);
  await teardownState(state);
}

/** What of a bed is still there: empty when teardown was complete. */
export async function labLeftovers(id: string): Promise<string[]> {
  const names = labNames(id);
  const found: string[] = [];
  const netns = await run('ip', ['netns', 'list']).catch(() => '');
  for (const line of netns.split('\n')) if (line.includes(names.bed)) found.push(`namespace ${line.trim()}`);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of mounts.split('\n')) {
    if (line.includes(names.bed) || line.includes(names.dir)) found.push(`mount ${line}`);
  }
  for (const p of await processesMentioning(names.bed)) found.push(`process ${p.pid} ${p.cmdline}`);
  for (const p of await processesMentioning(names.dir)) found.push(`process ${p.pid} ${p.cmdline}`);
  for (const h of [1, 2, 3]) {
    for (const d of await cgroupDirs(names.hostCgroup(h))) found.push(`cgroup ${d}`);
  }
  try {
    await readdir(names.dir);
    found.push(`directory ${names.dir}`);
  } catch {
    // gone, as it should be
  }
  return [...new Set(found)];
}
