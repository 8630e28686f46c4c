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

/** A failed change whose rollback failed too: the host is half changed. */
export class RollbackIncompleteError extends FlatnetError {
  override readonly name = 'RollbackIncompleteError';
}

export interface RunStepsOptions {
  logger?: Logger;
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
  let completed: number;
  let cause: IpBatchError;
  try {
    await ip.batch(steps.map((s) => s.do));
    return;
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
    throw new RollbackIncompleteError(
      'unavailable',
      `Host network change failed at "${failed}" and could not be fully undone (${errorMessage(rollbackErr)}); check links, addresses and routes.`,
      { cause },
    );
  }
  options.logger?.warn({ failed, completed, err: errorMessage(cause) }, 'host network change rolled back');
  throw new FlatnetError(
    'unavailable',
    `Host network change failed at "${failed}" and was undone: ${errorMessage(cause)}`,
    {
      cause,
    },
  );
}
