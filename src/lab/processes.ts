import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { execArgs } from '../hostnet/exec.js';
import { createServer } from 'node:net';

/** A child process started by the lab; stopped by its own PID only. */
export interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export function startProcess(cmd: string, args: string[], options: SpawnOptions = {}): Started {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    pid,
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** Runs a command to completion; rejects with its stderr on a non-zero exit (the lab wants every step to work). */
export async function run(
  cmd: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const res = await execArgs(cmd, args, options.input, options.env);
  if (res.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim() || res.stdout.trim()}`);
  return res.stdout;
}

/** A TCP port that was free a moment ago on the given address. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}
