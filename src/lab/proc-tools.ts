import { readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Field 22 of /proc/PID/stat: with the PID it names one process for the machine's uptime. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  return (await processStartTime(pid)) === startTime;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends SIGTERM to a recorded process, then SIGKILL after graceMs; touches nothing if the PID was reused. */
export async function stopRecorded(pid: number, startTime: string, graceMs: number): Promise<void> {
  if (!(await isSameProcess(pid, startTime))) return;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await isSameProcess(pid, startTime))) return;
    await sleep(100);
  }
  signal(pid, 'SIGKILL');
  while (await isSameProcess(pid, startTime)) await sleep(50);
}

/** Controller hierarchies mounted under /sys/fs/cgroup (v1 hybrid) or the root itself (pure v2). */
export async function cgroupHierarchies(): Promise<string[]> {
  const entries = await readdir(CGROUP_ROOT, { withFileTypes: true }).catch(() => []);
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => join(CGROUP_ROOT, e.name));
  const out: string[] = [];
  for (const d of dirs) {
    try {
      await readFile(join(d, 'cgroup.procs'));
      out.push(d);
    } catch {
      // not a hierarchy root (e.g. a cgroup of the pure-v2 tree would list itself below)
    }
  }
  try {
    await readFile(join(CGROUP_ROOT, 'cgroup.procs'));
    out.push(CGROUP_ROOT);
  } catch {
    // hybrid/v1: the root is a tmpfs
  }
  return out;
}

/** The hierarchy the lab places its daemons in to find them (and all their descendants) again. */
export async function trackingHierarchy(): Promise<string> {
  const all = await cgroupHierarchies();
  return all.find((h) => h.endsWith('/pids')) ?? all.find((h) => h.endsWith('/unified')) ?? CGROUP_ROOT;
}

/** Every cgroup directory at or below `name` in every hierarchy, deepest first. */
export async function cgroupDirs(name: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name), depth + 1);
    out.push(dir);
  };
  for (const h of await cgroupHierarchies()) await walk(join(h, name), 0);
  return out;
}

export async function cgroupPids(dirs: string[]): Promise<number[]> {
  const pids = new Set<number>();
  for (const d of dirs) {
    const text = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  return [...pids];
}

/** Kills every process in the bed's cgroups (containers, shims, daemons) until none is left. */
export async function killCgroup(name: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await cgroupPids(await cgroupDirs(name));
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} in cgroup ${name} would not die`);
    for (const pid of pids) signal(pid, 'SIGKILL');
    await sleep(100);
  }
}

export async function removeCgroup(name: string): Promise<void> {
  for (const d of await cgroupDirs(name)) {
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(d);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        await sleep(100); // a dying task can hold it for a moment
      }
    }
  }
}

/**
 * A zombie has exited and only waits for its parent to reap it; it still shows in its cgroup (a killed container's
 * process whose shim was killed too, reparented and not yet reaped on a loaded machine), but runs nothing.
 */
async function isZombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** PIDs of live processes whose cgroup path or command line mentions `needle` (zombies are not live). */
export async function processesMentioning(needle: string): Promise<{ pid: number; cmdline: string }[]> {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
    const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    if ((cmdline.includes(needle) || cgroup.includes(needle)) && !(await isZombie(pid))) out.push({ pid, cmdline });
  }
  return out;
}

/** PIDs of live processes whose network namespace is the one bound at `netnsPath` (/run/netns/NAME). */
export async function processesInNetns(netnsPath: string): Promise<number[]> {
  const target = (await stat(netnsPath)).ino;
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const ns = await stat(`/proc/${entry}/ns/net`).catch(() => undefined);
    if (ns?.ino === target) out.push(Number(entry));
  }
  return out;
}

/**
 * SIGKILLs every process of a lab host, as a power loss would: those in its network namespace (its daemons, and
 * a host-network managed plugin, which runs outside the host's cgroup), then its cgroup (containers, shims).
 */
export async function killHost(netnsPath: string, cgroup: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await processesInNetns(netnsPath);
    if (pids.length === 0) break;
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} in ${netnsPath} would not die`);
    for (const pid of pids) signal(pid, 'SIGKILL');
    await sleep(100);
  }
  await killCgroup(cgroup, timeoutMs);
}
