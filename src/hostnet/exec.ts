import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the program's stdin (closed at once otherwise). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long; the result then has code TIMEOUT_EXIT and says so on stderr. */
  timeoutMs?: number;
}

/** The exit code a timed-out run reports, as coreutils' timeout does. */
export const TIMEOUT_EXIT = 124;

/**
 * The one process runner of flatnet: a program with an argument array (never through a shell). Resolves with
 * the exit code instead of rejecting, so callers decide what a non-zero exit means; rejects only when the
 * program could not be started (ENOENT and the like). The positional (input, env) form is the older one.
 */
export function execArgs(
  file: string,
  args: readonly string[],
  options: ExecOptions | string = {},
  env?: NodeJS.ProcessEnv,
): Promise<ExecResult> {
  const o: ExecOptions =
    typeof options === 'string' ? { input: options, ...(env ? { env } : {}) } : { ...(env ? { env } : {}), ...options };
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(o.env !== undefined ? { env: o.env } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, o.timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // A child that exits before reading stdin would otherwise surface EPIPE as an unhandled error.
    child.stdin.on('error', () => undefined);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: timedOut ? TIMEOUT_EXIT : (code ?? (signal ? 128 : 1)),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut ? `${file} gave no answer within ${o.timeoutMs} ms\n${stderr}` : stderr,
      });
    });
    child.stdin.end(o.input ?? '');
  });
}

/** The first non-empty line a failed run printed (stderr, else stdout), for one-line error messages. */
export function failureLine(res: ExecResult): string {
  const line = `${res.stderr}\n${res.stdout}`.split('\n').find((l) => l.trim() !== '');
  return line?.trim() ?? `exit ${res.code}`;
}

/** Whether an executable with this name is on PATH (checked without a shell). */
export async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (dir === '') continue;
    try {
      await access(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
