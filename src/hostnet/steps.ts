import { FlatnetError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { IpCommand } from './batch.js';
import { IpBatchError, type IpRunner } from './ip-runner.js';

/** One change to the host network, with the commands that take it back. */
export interface Step {
  name: string;
  do: IpCommand;
  /** Run in order to undo this step; empty when a later undo (e.g. deleting the bridge) covers it. */
  undo: IpCommand[];
}

export interface RunStepsOptions {
  logger?: Logger;
  /** Tests only: stop after this many steps took effect (1-based), as if the next one had failed. */
  failAfterStep?: number;
}

/** The undo commands for the first `completed` steps, last step first. */
export function rollbackCommands(steps: readonly Step[], completed: number): IpCommand[] {
  return steps
    .slice(0, completed)
    .reverse()
    .flatMap((s) => s.undo);
}

/**
 * Applies all steps with a single `ip -batch` (so the change takes milliseconds) and, if any step fails,
 * undoes the ones that took effect, newest first, then throws.
 */
export async function runSteps(ip: IpRunner, steps: readonly Step[], options: RunStepsOptions = {}): Promise<void> {
  const injected = options.failAfterStep;
  const toRun = injected === undefined ? steps : steps.slice(0, injected);
  let completed: number;
  let cause: unknown;
  try {
    await ip.batch(toRun.map((s) => s.do));
    if (injected === undefined || injected >= steps.length) return;
    completed = toRun.length;
    cause = new FlatnetError('internal', `Injected failure after step ${injected} (${toRun.at(-1)?.name ?? 'none'}).`);
  } catch (err) {
    if (!(err instanceof IpBatchError)) throw err;
    completed = err.completed;
    cause = err;
  }
  const failed = steps[completed]?.name ?? 'unknown step';
  const undo = rollbackCommands(steps, completed);
  try {
    // -force: one undo that finds its work already gone must not stop the others.
    await ip.batch(undo, { force: true });
  } catch (rollbackErr) {
    options.logger?.error(
      { err: errorMessage(rollbackErr), undo: undo.map((c) => c.join(' ')) },
      'rollback of host network change was incomplete',
    );
    throw new FlatnetError(
      'unavailable',
      `Host network change failed at "${failed}" and could not be fully undone (${errorMessage(rollbackErr)}); check links, addresses and routes.`,
      { cause },
    );
  }
  options.logger?.warn({ failed, completed, err: errorMessage(cause) }, 'host network change rolled back');
  throw new FlatnetError('unavailable', `Host network change failed at "${failed}" and was undone: ${errorMessage(cause)}`, {
    cause,
  });
}
