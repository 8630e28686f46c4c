import assert from 'node:assert/strict';
import { execArgs } from '../../src/hostnet/exec.js';
import { FLATNET_CLI } from './flatnet-server.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** The whole environment (default: PATH only, so the caller's FLATNET_* never leak in). */
  env?: NodeJS.ProcessEnv;
  /** Run inside this network namespace (/run/netns/NAME) through nsenter. */
  netns?: string;
  timeoutMs?: number;
}

/** The built CLI as a child process: `flatnet ARGS`, to completion. */
export async function runFlatnet(args: readonly string[], o: CliRunOptions = {}): Promise<CliResult> {
  const env = o.env ?? { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  const argv = [FLATNET_CLI, ...args];
  const res =
    o.netns === undefined
      ? await execArgs(process.execPath, argv, { env, timeoutMs: o.timeoutMs ?? 60_000 })
      : await execArgs('nsenter', [`--net=/run/netns/${o.netns}`, process.execPath, ...argv], {
          env,
          timeoutMs: o.timeoutMs ?? 60_000,
        });
  return res;
}

export function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `exit 0 expected; stderr: ${r.stderr}`);
}

/**
 * A failure the CLI way: one line `flatnet: ...` on stderr matching `pattern`, no stack trace, and exit `code`
 * (any non-zero code when absent).
 */
export function assertOneLineError(r: CliResult, pattern: RegExp, code?: number): void {
  if (code === undefined) assert.notEqual(r.code, 0, `a non-zero exit expected; stderr: ${r.stderr}`);
  else assert.equal(r.code, code, `exit ${code} expected; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0] ?? '', /^flatnet: /);
  assert.match(lines[0] ?? '', pattern);
  assert.equal(r.stderr.includes('    at '), false, 'no stack trace');
}
