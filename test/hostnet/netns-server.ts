import { startProcess, waitFor } from '../../src/lab/processes.js';
import { FLATNET_CLI } from '../harness/flatnet-server.js';
import { pluginCall } from '../harness/plugin-client.js';

/** `flatnet server` run inside a test namespace (nsenter execs it, so the PID is the server's own). */
export interface NetnsServer {
  readonly pid: number;
  output(): string;
  exited(): Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function spawnServerInNetns(netns: string, socket: string, stateDir: string): NetnsServer {
  const started = startProcess(
    'nsenter',
    [
      `--net=/run/netns/${netns}`,
      process.execPath,
      FLATNET_CLI,
      'server',
      '--socket',
      socket,
      '--state-dir',
      stateDir,
      // No etcd is needed to start and answer Activate; a dead port keeps the test off any real cluster.
      '--etcd-endpoints',
      'http://127.0.0.1:9',
      '--host-id',
      `lock-${netns}`,
      '--log-level',
      'info',
    ],
    { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  let out = '';
  started.child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  started.child.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => {
    if (started.child.exitCode !== null || started.child.signalCode !== null) resolve(started.child.exitCode);
    else started.child.once('exit', (code) => resolve(code));
  });
  return {
    pid: started.pid,
    output: () => out,
    exited: () => exit,
    stop: (signal = 'SIGTERM') => started.stop(signal),
  };
}

export async function waitServing(server: NetnsServer, socket: string): Promise<void> {
  let code: number | null | undefined;
  void server.exited().then((c) => (code = c));
  try {
    await waitFor(
      `flatnet server (pid ${server.pid}) on ${socket}`,
      async () => {
        if (code !== undefined) throw new Error(`it exited with code ${code}`);
        return (await pluginCall(socket, 'Plugin.Activate')).status === 200 ? true : undefined;
      },
      20_000,
    );
  } catch (err) {
    await server.stop('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- server output ---\n${server.output()}`);
  }
}
