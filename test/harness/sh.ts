import { execArgs } from '../../src/hostnet/exec.js';

/** Runs a command and fails loudly with its stderr; test setup only. */
export async function sh(file: string, args: readonly string[], input?: string): Promise<string> {
  const res = await execArgs(file, args, input ?? {});
  if (res.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
  return res.stdout;
}
