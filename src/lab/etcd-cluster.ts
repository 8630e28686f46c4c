import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run, startProcess, type Started, waitFor } from './processes.js';

export interface EtcdClusterOptions {
  /** 1 or 3 members (default 1). */
  members?: number;
  /** Extra client listen address per member besides 127.0.0.1 (e.g. the lab LAN bridge address). */
  extraClientHost?: string;
  /** Serve clients over TLS with these files (server cert must cover 127.0.0.1 and extraClientHost). */
  tls?: { caFile: string; certFile: string; keyFile: string; clientCertAuth: boolean };
  /** Run the member inside this network namespace (a path such as /run/netns/x), via nsenter. */
  netnsPath?: string;
  /** Keep the data dirs here instead of a fresh temp dir (the caller removes it). */
  dataDir?: string;
  /**
   * Write each member's output to <logDir>/etcd-<name>.log and start it in its own process group, so that it
   * outlives this process (a kept demo bed); stop() and the lab's teardown still kill it by PID.
   */
  logDir?: string;
}

export interface EtcdCluster {
  /** Client URLs on 127.0.0.1 (and on extraClientHost when given, listed after). */
  endpoints: string[];
  /** Client URLs reachable from other namespaces (extraClientHost), or the loopback ones. */
  lanEndpoints: string[];
  members: { name: string; pid: number; clientUrl: string }[];
  /** Where the members keep their data. */
  dataDir: string;
  /** Stops one member (for failure tests); the others keep running. */
  stopMember(index: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts real etcd members (Debian etcd-server) on free loopback ports, each with its own data dir. */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = opts.members ?? 1;
  const dir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'flatnet-etcd-')));
  const ownsDir = opts.dataDir === undefined;
  const scheme = opts.tls ? 'https' : 'http';
  const specs = [];
  for (let i = 0; i < count; i++) {
    specs.push({ name: `m${i}`, peerPort: await freePort(), clientPort: await freePort() });
  }
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  const token = `flatnet-${process.pid}-${Date.now()}`;
  const procs: Started[] = [];
  const members = [];
  const lan: string[] = [];
  const local: string[] = [];
  try {
    for (const s of specs) {
      const clientUrls = [`${scheme}://127.0.0.1:${s.clientPort}`];
      if (opts.extraClientHost) clientUrls.push(`${scheme}://${opts.extraClientHost}:${s.clientPort}`);
      const args = [
        '--name',
        s.name,
        '--data-dir',
        join(dir, s.name),
        '--listen-peer-urls',
        `http://127.0.0.1:${s.peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${s.peerPort}`,
        '--listen-client-urls',
        clientUrls.join(','),
        '--advertise-client-urls',
        clientUrls.join(','),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        token,
        '--log-level',
        'error',
        '--logger',
        'zap',
      ];
      if (opts.tls) {
        args.push(
          '--cert-file',
          opts.tls.certFile,
          '--key-file',
          opts.tls.keyFile,
          '--trusted-ca-file',
          opts.tls.caFile,
        );
        if (opts.tls.clientCertAuth) args.push('--client-cert-auth');
      }
      const cmd = opts.netnsPath ? 'nsenter' : 'etcd';
      const argv = opts.netnsPath ? [`--net=${opts.netnsPath}`, 'etcd', ...args] : args;
      let started: Started;
      if (opts.logDir) {
        const log = openSync(join(opts.logDir, `etcd-${s.name}.log`), 'a');
        started = startProcess(cmd, argv, { stdio: ['ignore', log, log], detached: true });
        closeSync(log);
        started.child.unref();
      } else {
        started = startProcess(cmd, argv);
        started.child.stdout?.resume();
        let stderr = '';
        started.child.stderr?.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-4000);
        });
        started.child.once('exit', (code) => {
          if (code !== 0 && code !== null && stderr) process.stderr.write(`etcd ${s.name} exited ${code}: ${stderr}\n`);
        });
      }
      procs.push(started);
      members.push({ name: s.name, pid: started.pid, clientUrl: clientUrls[0] as string });
      local.push(clientUrls[0] as string);
      lan.push(clientUrls[clientUrls.length - 1] as string);
    }
    const ctlArgs = ['--endpoints', local.join(','), 'endpoint', 'health', '--command-timeout=2s'];
    if (opts.tls) {
      ctlArgs.push('--cacert', opts.tls.caFile, '--cert', opts.tls.certFile, '--key', opts.tls.keyFile);
    }
    // Members in another namespace listen on that namespace's loopback: ask from inside it.
    const [ctlCmd, ctlArgv] = opts.netnsPath
      ? ['nsenter', [`--net=${opts.netnsPath}`, 'etcdctl', ...ctlArgs]]
      : ['etcdctl', ctlArgs];
    await waitFor(
      'etcd to become healthy',
      async () => {
        await run(ctlCmd, ctlArgv, { env: { ...process.env, ETCDCTL_API: '3' } });
        return true;
      },
      30_000,
      200,
    );
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoints: opts.extraClientHost ? [...local, ...lan] : local,
    lanEndpoints: lan,
    members,
    dataDir: dir,
    async stopMember(index: number) {
      await procs[index]?.stop();
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop()));
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
