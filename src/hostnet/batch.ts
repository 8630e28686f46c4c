import { FlatnetError } from '../errors.js';

/** One `ip` command as an argument array, e.g. ['link', 'set', 'dev', 'eth0', 'up']. */
export type IpCommand = readonly string[];

// `ip -batch` splits lines on whitespace and treats quotes, '#' and '\' specially: only plain tokens may pass.
const SAFE_TOKEN = /^[A-Za-z0-9_.:/@%+,=-]+$/;

export function isSafeBatchToken(token: string): boolean {
  return SAFE_TOKEN.test(token);
}

/** Renders commands as `ip -batch` input, one per line; refuses any token batch parsing could misread. */
export function renderBatch(commands: readonly IpCommand[]): string {
  return commands
    .map((cmd) => {
      if (cmd.length === 0) throw new FlatnetError('internal', 'An empty ip command was built.');
      for (const token of cmd) {
        if (!isSafeBatchToken(token)) {
          throw new FlatnetError(
            'invalid',
            `The value "${token}" cannot be passed to ip: it contains unsafe characters.`,
          );
        }
      }
      return cmd.join(' ');
    })
    .join('\n')
    .concat('\n');
}

/** `ip -batch` reports the first failing command as "Command failed -:N" (1-based line number). */
export function failedBatchLine(stderr: string): number | undefined {
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** A failed `ip -batch`: how many commands completed before the failing one, and what ip said. */
export class IpBatchError extends FlatnetError {
  constructor(
    readonly completed: number,
    readonly stderr: string,
  ) {
    super('unavailable', `ip failed after ${completed} command(s): ${stderr.trim().split('\n')[0] ?? ''}`);
    this.name = 'IpBatchError';
  }
}
