import { join } from 'node:path';
import { startProcess, waitFor, type Started } from '../../src/lab/processes.js';
import { pluginCall } from './plugin-client.js';

/** The built CLI (dist/src/cli/main.js), from dist/test/harness or dist/bench alike. */
export const FLATNET_CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.js');

const OUTPUT_LIMIT = 1 << 20;

export interface FlatnetServerOptions {
  /** The plugin socket it serves (passed as --socket). */
  socket: string;
  /** Further `flatnet server` flags. */
  args?: string[];
  /** The whole environment of the server (default: PATH only, so the caller's FLATNET_* never leak in). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for Plugin.Activate (default 15 s). */
  timeoutMs?: number;
}

export interface FlatnetServer {
  readonly socket: string;
  readonly pid: number;
  /** Everything it printed so far, stdout and stderr, for failure messages and log assertions. */
  output(): string;
  /** Resolves with the exit code once it has exited. */
  exited(): Promise<number | null>;
  /** Signals its own PID (SIGTERM, SIGKILL after a grace period) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `flatnet server` as a child process without waiting for it (e.g. one expected to refuse to start). */
export function spawnFlatnetServer(o: FlatnetServerOptions): FlatnetServer {
  const started: Started = startProcess(
    process.execPath,
    [FLATNET_CLI, 'server', '--socket', o.socket, ...(o.args ?? [])],
    {
      env: o.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    },
  );
  // The newest MiB at most: a benchmark's server logs for minutes.
  const chunks: Buffer[] = [];
  let kept = 0;
  const keep = (d: Buffer): void => {
    chunks.push(d);
    kept += d.length;
    while (kept > OUTPUT_LIMIT && chunks.length > 1) kept -= (chunks.shift() as Buffer).length;
  };
  started.child.stdout?.on('data', keep);
  started.child.stderr?.on('data', keep);
  const exit = new Promise<number | null>((resolve) => {
    if (started.child.exitCode !== null || started.child.signalCode !== null) resolve(started.child.exitCode);
    else started.child.once('exit', (code) => resolve(code));
  });
  return {
    socket: o.socket,
    pid: started.pid,
    output: () => Buffer.concat(chunks).toString('utf8'),
    exited: () => exit,
    stop: (signal = 'SIGTERM') => started.stop(signal),
  };
}

/** Waits until the server answers Plugin.Activate with 200; throws with its output when it does not (or died). */
export async function waitAnswering(server: FlatnetServer, timeoutMs = 15_000): Promise<void> {
  let code: number | null | undefined;
  void server.exited().then((c) => (code = c));
  try {
    await waitFor(
      `flatnet server (pid ${server.pid}) to answer Plugin.Activate on ${server.socket}`,
      async () => {
        if (code !== undefined) throw new Error(`it exited with code ${code}`);
        return (await pluginCall(server.socket, 'Plugin.Activate')).status === 200 ? true : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    await server.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- server output ---\n${server.output()}`);
  }
}

/** Starts `flatnet server` and resolves once it answers Plugin.Activate. */
export async function startFlatnetServer(o: FlatnetServerOptions): Promise<FlatnetServer> {
  const server = spawnFlatnetServer(o);
  await waitAnswering(server, o.timeoutMs);
  return server;
}
