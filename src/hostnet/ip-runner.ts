import { FlatnetError } from '../errors.js';
import { failedBatchLine, IpBatchError, renderBatch, type IpCommand } from './batch.js';
import { execArgs, type ExecResult } from './exec.js';
import { IpSession } from './ip-session.js';
import { assertIfName } from './names.js';

export { IpBatchError };

export interface IpRunnerOptions {
  /**
   * Name of a network namespace under /run/netns to work in (tests); absent = the current namespace,
   * which is what the plugin uses in production.
   */
  netns?: string;
  ipPath?: string;
  nsenterPath?: string;
  /** false: batches that ask for the session spawn their own `ip` all the same (see IpSession). */
  session?: boolean;
}

export interface BatchOptions {
  /** Every command is tried, whatever fails (never through the session). */
  force?: boolean;
  /**
   * Through the runner's long-lived ip (IpSession): for the commands on the path of a container start or stop.
   * The rest (bridge takeover and its rollback) spawn an ip per batch: if that ip dies, its exit says how far
   * it got, which a rollback needs.
   */
  session?: boolean;
}

/**
 * Every call flatnet makes to iproute2 and iptables goes through here: argument arrays only, one namespace.
 */
export class IpRunner {
  readonly netns: string | undefined;
  private readonly ip: string;
  private readonly nsenter: string;
  private readonly session: IpSession | undefined;

  constructor(options: IpRunnerOptions = {}) {
    if (options.netns !== undefined) assertIfName(options.netns, 'network namespace name');
    this.netns = options.netns;
    this.ip = options.ipPath ?? 'ip';
    this.nsenter = options.nsenterPath ?? 'nsenter';
    this.session = options.session === false ? undefined : new IpSession(this.ip, this.ipPrefix());
  }

  /** Ends the running `ip` of this runner, if any (it would also end with this process). */
  close(): void {
    this.session?.close();
  }

  private ipPrefix(): string[] {
    return this.netns === undefined ? [] : ['-n', this.netns];
  }

  private async exec(file: string, args: string[], input?: string): Promise<ExecResult> {
    try {
      return await execArgs(file, args, input);
    } catch (err) {
      throw new FlatnetError('unavailable', `Could not run ${file}: is it installed and on PATH?`, { cause: err });
    }
  }

  /** `ip ARGS`; rejects with ip's own message on failure. */
  async run(args: IpCommand): Promise<string> {
    const res = await this.exec(this.ip, [...this.ipPrefix(), ...args]);
    if (res.code !== 0) {
      throw new FlatnetError('unavailable', `ip ${args.join(' ')} failed: ${res.stderr.trim() || `exit ${res.code}`}`);
    }
    return res.stdout;
  }

  /** `ip -j ARGS`, parsed; callers validate the shape with zod. */
  async json(args: IpCommand): Promise<unknown> {
    const out = await this.run(['-j', ...args]);
    if (out.trim() === '') return [];
    try {
      return JSON.parse(out) as unknown;
    } catch (err) {
      throw new FlatnetError('unavailable', `ip -j ${args.join(' ')} printed something that is not JSON.`, {
        cause: err,
      });
    }
  }

  /**
   * Runs several commands with one `ip -batch -` (spawned, or the session's). Without force, ip stops at the first failure and
   * IpBatchError.completed says how many commands took effect; with force every command is tried.
   */
  async batch(commands: readonly IpCommand[], options: BatchOptions = {}): Promise<void> {
    if (commands.length === 0) return;
    if (this.session === undefined || options.session !== true || options.force === true)
      return this.spawnBatch(commands, options);
    try {
      await this.session.run(commands);
    } catch (err) {
      if (!(err instanceof IpBatchError)) throw err;
      // Once more in a fresh ip, from the failed command on: a stale name cache in the session fails only there.
      try {
        await this.spawnBatch(commands.slice(err.completed), {});
      } catch (again) {
        if (again instanceof IpBatchError) throw new IpBatchError(err.completed + again.completed, again.stderr);
        throw again;
      }
    }
  }

  private async spawnBatch(commands: readonly IpCommand[], options: { force?: boolean }): Promise<void> {
    const input = renderBatch(commands);
    const args = [...this.ipPrefix(), ...(options.force ? ['-force'] : []), '-batch', '-'];
    const res = await this.exec(this.ip, args, input);
    if (res.code === 0) return;
    const line = failedBatchLine(res.stderr);
    throw new IpBatchError(line === undefined ? 0 : line - 1, res.stderr || `exit ${res.code}`);
  }

  /** iptables/ip6tables in this runner's namespace; the exit code is returned (1 means "no such rule" for -C). */
  async xtables(binary: 'iptables' | 'ip6tables', args: readonly string[]): Promise<ExecResult> {
    if (this.netns === undefined) return this.exec(binary, [...args]);
    return this.exec(this.nsenter, [`--net=/run/netns/${this.netns}`, binary, ...args]);
  }

  /** Runs a program inside another network namespace given by path (a container's SandboxKey). */
  async inNetns(netnsPath: string, file: string, args: readonly string[]): Promise<ExecResult> {
    if (!netnsPath.startsWith('/') || netnsPath.includes('\0')) {
      throw new FlatnetError('invalid', `The sandbox key "${netnsPath}" is not an absolute path.`);
    }
    return this.exec(this.nsenter, [`--net=${netnsPath}`, file, ...args]);
  }
}
