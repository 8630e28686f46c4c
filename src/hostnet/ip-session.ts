import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { FlatnetError } from '../errors.js';
import { type IpCommand, IpBatchError, renderBatch } from './batch.js';

/**
 * A name longer than IFNAMSIZ: `ip link show dev` of it always fails at once, without changing anything, so its
 * "Command failed" line tells that every line before it has been done.
 */
const MARK: IpCommand = ['link', 'show', 'dev', 'flatnet-ip-session-mark'];
const COMMAND_TIMEOUT_MS = 10_000;

/** A failure `ip -batch` reported: the 1-based input line and what ip printed about it. */
export interface BatchFailure {
  line: number;
  text: string;
}

/** Reads `ip -force -batch` stderr as it comes: each "Command failed -:N" closes the text printed since the last. */
export class BatchStderr {
  private partial = '';
  private said: string[] = [];

  push(chunk: string): BatchFailure[] {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    const failures: BatchFailure[] = [];
    for (const l of lines) {
      const m = /^Command failed -:(\d+)$/.exec(l);
      if (m === null) {
        this.said.push(l);
        continue;
      }
      failures.push({ line: Number(m[1]), text: this.said.join('\n') });
      this.said = [];
    }
    return failures;
  }
}

interface InFlight {
  child: ChildProcessWithoutNullStreams;
  commandLine: number;
  markLine: number;
  failure: string | undefined;
  settle(result: { failure: string | undefined } | { error: Error }): void;
}

/**
 * One long-lived `ip -force -batch -` fed a command at a time. A spawn of `ip` costs the server a fork and an exec
 * per call (3-5 ms on an idle host, up to 100 ms on a busy one, measured); a line written to a running ip costs
 * a fraction of a millisecond. Commands run one at a time, each followed by MARK, so a failure is known before
 * the next command is sent: the same semantics as `ip -batch` without force (stop at the first failure).
 *
 * A long-lived ip keeps state between commands (its netlink socket, its cache of interface names; links deleted
 * and made again under one name resolve right with iproute2 6.1, tested). Should a session ever go wrong where
 * a fresh ip would not, a failure costs no more than one retry: after a failure or a timeout the session is
 * replaced, and IpRunner runs the failed command once more in a fresh `ip` (a failed command changed nothing)
 * before it reports the failure.
 */
export class IpSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private line = 0;
  private current: InFlight | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly prefix: readonly string[],
  ) {}

  /** Runs the commands in order; stops at the first that fails (IpBatchError.completed = those done before it). */
  run(commands: readonly IpCommand[]): Promise<void> {
    // Refuses unsafe tokens before anything is sent.
    const lines = commands.map((c) => renderBatch([c]));
    const job = this.queue.then(async () => {
      for (const [i, text] of lines.entries()) {
        const failure = await this.one(text, commands[i] as IpCommand);
        if (failure !== undefined) {
          this.retire();
          throw new IpBatchError(i, `${failure}\nCommand failed -:${i + 1}\n`);
        }
      }
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** Ends the ip process (it exits at the end of its input); a later run starts another. */
  close(): void {
    this.retire(false);
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn(this.file, [...this.prefix, '-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const parser = new BatchStderr();
    this.line = 0;
    child.stdout.resume();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const f of parser.push(chunk)) this.heard(child, f);
    });
    const gone = (error: Error): void => {
      if (this.child === child) this.child = undefined;
      const c = this.current;
      if (c?.child !== child) return;
      this.current = undefined;
      c.settle({ error });
    };
    child.on('error', (err) =>
      gone(new FlatnetError('unavailable', `Could not run ${this.file}: is it installed and on PATH?`, { cause: err })),
    );
    child.on('exit', (code, signal) =>
      gone(new FlatnetError('unavailable', `ip exited (${signal ?? `code ${code}`}) with a command pending.`)),
    );
    child.stdin.on('error', () => undefined);
    this.idle(child);
    return child;
  }

  private heard(child: ChildProcessWithoutNullStreams, f: BatchFailure): void {
    const c = this.current;
    if (c?.child !== child) return;
    if (f.line === c.commandLine) c.failure = f.text;
    else if (f.line === c.markLine) {
      this.current = undefined;
      c.settle({ failure: c.failure });
    }
  }

  private one(text: string, command: IpCommand): Promise<string | undefined> {
    const child = this.child ?? (this.child = this.start());
    this.busy(child);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.current = undefined;
        this.retire();
        reject(
          new FlatnetError(
            'unavailable',
            `ip did not finish "${command.join(' ')}" within ${COMMAND_TIMEOUT_MS / 1000} s.`,
          ),
        );
      }, COMMAND_TIMEOUT_MS);
      this.line += 2;
      this.current = {
        child,
        commandLine: this.line - 1,
        markLine: this.line,
        failure: undefined,
        settle: (r) => {
          clearTimeout(timer);
          this.idle(child);
          if ('error' in r) reject(r.error);
          else resolve(r.failure);
        },
      };
      child.stdin.write(text + renderBatch([MARK]));
    });
  }

  private retire(startNext = true): void {
    const child = this.child;
    this.child = undefined;
    if (child === undefined) return;
    child.stdin.end();
    this.idle(child);
    // The next one is started now, off the path of the call that will need it.
    if (!startNext) return;
    setImmediate(() => {
      if (this.child === undefined) this.child = this.start();
    });
  }

  // An idle session must not keep a CLI process (or a test) alive; a pending command must.
  private busy(child: ChildProcessWithoutNullStreams): void {
    child.ref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { ref?: () => void }).ref?.();
  }

  private idle(child: ChildProcessWithoutNullStreams): void {
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  }
}
