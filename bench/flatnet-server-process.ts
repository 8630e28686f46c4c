import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, type Started } from '../src/lab/processes.js';

/** A real `flatnet server` process for the memory benches, and its memory as /proc reports it. */

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

/** No flags (the baseline) and the flags the systemd unit and the managed plugin ship (plugin-config/). */
export const SHIPPED_FLAGS = '--max-semi-space-size=2 --max-old-space-size=128';

export interface ServerProcessOptions {
  endpoints: string[];
  prefix: string;
  hostId: string;
  /** Its socket and state dir go here. */
  dir: string;
  /** An empty config file (so that no /etc/flatnet/flatnet.conf is read). */
  config: string;
  cwd: string;
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** More `flatnet server` flags (e.g. --reconcile-interval-ms 5000). */
  serverArgs?: string[];
}

export function startServerProcess(o: ServerProcessOptions): { server: Started; socket: string } {
  const socket = join(o.dir, 'plugins', 'flatnet.sock');
  const server = startProcess(
    process.execPath,
    [
      ...(o.nodeFlags ?? []),
      CLI,
      'server',
      '--config',
      o.config,
      '--socket',
      socket,
      '--etcd-endpoints',
      o.endpoints.join(','),
      '--etcd-prefix',
      o.prefix,
      '--host-id',
      o.hostId,
      '--state-dir',
      join(o.dir, 'state'),
      '--log-level',
      'info',
      ...(o.serverArgs ?? []),
    ],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
      cwd: o.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...o.env },
    },
  );
  return { server, socket };
}

export interface Memory {
  rssMiB: number;
  anonMiB: number;
  /** The peak RSS so far (VmHWM). */
  peakMiB: number;
}

export async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, peakMiB: kib('VmHWM') / 1024 };
}
