import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBusyboxTarball, IMAGE, importImage } from './busybox-image.js';
import { flatnetCli, hostPaths, type HostSpec, logTails, prepareHostDirs, startHostDaemons } from './docker-host.js';
import { killPlugin, restartDockerd, startPlugin } from './host-restarts.js';
import { startEtcdCluster } from './etcd-cluster.js';
import { DOCKER20, type Engine } from './engine.js';
import { guardNoPull } from './no-pull.js';
import { createHostNetns, createLan, createUts, inNetns } from './lan.js';
import { type LabState, type RecordedProcess, writeLabState } from './lab-state.js';
import { LAN, labNames, newLabId, SEGMENTS, type SegmentIndex } from './names.js';
import { killHost, processStartTime, trackingHierarchy } from './proc-tools.js';
import { run } from './processes.js';
import { teardownState } from './teardown.js';

export { IMAGE } from './busybox-image.js';
export { DOCKER20, docker28, type Engine } from './engine.js';
export { flatNetworkCreate, LAN, SEGMENT2, SEGMENTS, type SegmentIndex } from './names.js';
export { teardownLab, labLeftovers } from './teardown.js';

export interface LabOptions {
  hosts: 2 | 3 | 1;
  /** Recorded in the bed's state file to tell kept beds apart; every name still carries the random id. */
  name?: string;
  /** Sets iptables FORWARD policy DROP in the last host's namespace (a host where dockerd ran with iptables). */
  forwardPolicyDrop?: boolean;
  /** Start the flatnet plugin server on each host (default: when the CLI is built). */
  plugin?: boolean;
  /** etcd members (default 3). */
  etcdMembers?: 1 | 3;
  /** The Docker engine every host runs (default Debian's docker.io 20.10). */
  engine?: Engine;
  /**
   * The LAN segment of each host, in host order (default: all on LAN). A host on segment 1 sits on SEGMENT2
   * (10.98.0.0/16, its own switch); the LAN namespace then routes between the two segments, and only between
   * them. etcd and the lab's DNS address stay on LAN's router address, reached from SEGMENT2 through it.
   */
  segments?: SegmentIndex[];
  /** Extra environment for every host's plugin server (e.g. FLATNET_RECONCILE_INTERVAL_MS in fault tests). */
  pluginEnv?: Record<string, string>;
}

export interface LabHost {
  /** Hostname and flatnet host id: h1, h2, h3. */
  name: string;
  netns: string;
  netnsPath: string;
  utsPath: string;
  /** The host's LAN address (on eth0, or on br0 once flatnet took the NIC over). */
  lanAddress: string;
  /** The host's segment (0: LAN, 1: SEGMENT2) and that segment's router address (its default gateway). */
  segment: SegmentIndex;
  gateway: string;
  dir: string;
  /** Host-side path of the host's /run/docker/plugins. */
  pluginSocketDir: string;
  /** Host-side path of dockerd's exec root (/run/docker inside the host). */
  execRoot: string;
  dockerSocket: string;
  logDir: string;
  /**
   * The engine's docker CLI against this host's daemon. Never pulls: run/create get --pull=never, services
   * --no-resolve-image, and pull/plugin install are refused (no registry is reachable from a lab).
   */
  docker(args: string[]): Promise<string>;
  /** A command in this host's network namespace. */
  exec(cmd: string, args: string[]): Promise<string>;
  /** The flatnet CLI as this host would run it (its network namespace, its host id, the bed's etcd). */
  flatnet(args: string[]): Promise<string>;
  logTail(lines?: number): Promise<string>;
  /** Fault tests: SIGKILLs this host's plugin server (only the process the lab started); resolves with its PID once dead. */
  killPlugin(): Promise<number>;
  /** Starts this host's plugin server again in its namespaces; resolves once it answers on its socket. */
  startPlugin(): Promise<void>;
  /** Restarts dockerd as `systemctl restart docker` does (SIGTERM, then start); resolves once it answers. */
  restartDockerd(): Promise<void>;
  /**
   * A power loss: SIGKILL for every process of the host (daemons, plugin, containers), nothing stopped in order.
   * The host is dead afterwards (docker() fails); the lab's stop() still removes what is left.
   */
  crash(): Promise<void>;
}

export interface Lab {
  id: string;
  engine: Engine;
  dir: string;
  lanNetns: string;
  hosts: LabHost[];
  /** Client URLs on the LAN (10.99.0.1:port): reachable from the hosts, not from the root namespace. */
  etcdEndpoints: string[];
  /** The etcd members' processes (fault tests signal them: SIGSTOP/SIGCONT, SIGKILL), in etcdEndpoints' order. */
  etcdMembers: { name: string; pid: number; clientUrl: string }[];
  /** etcdctl (v3 API) run inside the LAN namespace. */
  etcdctl(args: string[]): Promise<string>;
  /** A command in the LAN namespace (the router/switch: ping hosts and containers from there). */
  lanExec(cmd: string, args: string[]): Promise<string>;
  /** Log tails of every host, for assertion messages. */
  diagnostics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startLab(opts: LabOptions): Promise<Lab> {
  const id = newLabId();
  const names = labNames(id);
  await mkdir(names.dir, { recursive: true });
  const hierarchy = await trackingHierarchy();
  const hostNumbers = Array.from({ length: opts.hosts }, (_, i) => i + 1);
  if (opts.segments !== undefined && opts.segments.length !== opts.hosts) {
    throw new Error(`startLab: segments names ${opts.segments.length} hosts, the lab has ${opts.hosts}`);
  }
  const segmentOf = (n: number): SegmentIndex => opts.segments?.[n - 1] ?? 0;
  const segmentCount = hostNumbers.some((n) => segmentOf(n) === 1) ? 2 : 1;
  const state: LabState = {
    id,
    name: opts.name ?? '',
    dir: names.dir,
    netns: [names.lanNetns, ...hostNumbers.map((n) => names.hostNetns(n))],
    utsFiles: hostNumbers.map((n) => join(names.dir, `uts-h${n}`)),
    cgroups: hostNumbers.map((n) => names.hostCgroup(n)),
    processes: [],
    containerdStateDirs: hostNumbers.map((n) => hostPaths(join(names.dir, `h${n}`)).runContainerd),
    dockerSockets: hostNumbers.map((n) => hostPaths(join(names.dir, `h${n}`)).dockerSocket),
  };
  // Writes are chained so that concurrent host start-ups never interleave; each writes the latest state.
  let saving: Promise<void> = writeLabState(state);
  const save = (): Promise<void> => (saving = saving.then(() => writeLabState(state)));
  await saving;
  const plugin = opts.plugin ?? flatnetCli() !== undefined;
  const engine = opts.engine ?? DOCKER20;
  try {
    await createLan(names.lanNetns, segmentCount);
    for (const n of hostNumbers) {
      await createHostNetns({
        lanNetns: names.lanNetns,
        netns: names.hostNetns(n),
        lanPort: names.lanPort(n),
        address: names.hostLanAddress(n, segmentOf(n)),
        forwardPolicyDrop: opts.forwardPolicyDrop === true && n === opts.hosts,
        segment: segmentOf(n),
      });
      await createUts(join(names.dir, `uts-h${n}`), names.hostName(n));
      await prepareHostDirs(join(names.dir, `h${n}`), LAN.gateway);
    }
    const etcd = await startEtcdCluster({
      members: opts.etcdMembers ?? 3,
      netnsPath: `/run/netns/${names.lanNetns}`,
      extraClientHost: LAN.gateway,
      dataDir: join(names.dir, 'etcd'),
      logDir: names.dir,
    });
    state.processes.push(
      ...(await Promise.all(
        etcd.members.map(async (m) => ({
          pid: m.pid,
          startTime: (await processStartTime(m.pid)) ?? '',
          what: `etcd ${m.name}`,
        })),
      )),
    );
    await save();
    const etcdEndpoints = etcd.lanEndpoints;
    const tarball = buildBusyboxTarball(names.dir);
    const specs: HostSpec[] = hostNumbers.map((n) => ({
      hostDir: join(names.dir, `h${n}`),
      netnsPath: `/run/netns/${names.hostNetns(n)}`,
      utsPath: join(names.dir, `uts-h${n}`),
      hostName: names.hostName(n),
      cgroup: names.hostCgroup(n),
      trackingHierarchy: hierarchy,
      etcdEndpoints,
      plugin,
      engine,
      // The LAN router namespace: no DNS server listens there, so a lookup fails at once and stays inside.
      dns: LAN.gateway,
      ...(opts.pluginEnv ? { pluginEnv: opts.pluginEnv } : {}),
    }));
    /** A daemon restarted by a fault test replaces its predecessor in the state file (teardown stops it by PID). */
    const replace = async (proc: RecordedProcess): Promise<void> => {
      state.processes = [...state.processes.filter((p) => p.what !== proc.what), proc];
      await save();
    };
    const hosts = specs.map((spec, i) => {
      const n = hostNumbers[i] as number;
      return makeHost(names, n, segmentOf(n), etcdEndpoints, engine, spec, replace);
    });
    // Settle every host before judging, so that a failed start-up never tears down under a host still starting.
    const results = await Promise.allSettled(
      hosts.map(async (h, i) => {
        const proc = await startHostDaemons(specs[i] as HostSpec);
        state.processes.push(proc);
        await save();
        await importImage((args) => h.docker(args), await tarball);
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return {
      id,
      engine,
      dir: names.dir,
      lanNetns: names.lanNetns,
      hosts,
      etcdEndpoints,
      etcdMembers: etcd.members.map((m, i) => ({
        name: m.name,
        pid: m.pid,
        clientUrl: etcdEndpoints[i] ?? m.clientUrl,
      })),
      etcdctl: (args) =>
        run(
          'nsenter',
          [`--net=/run/netns/${names.lanNetns}`, 'etcdctl', '--endpoints', etcdEndpoints.join(','), ...args],
          {
            env: { ...process.env, ETCDCTL_API: '3' },
          },
        ),
      lanExec: (cmd, args) => inNetns(names.lanNetns, cmd, args),
      diagnostics: async () => (await Promise.all(hosts.map((h) => h.logTail()))).join('\n'),
      stop: () => teardownState(state),
    };
  } catch (err) {
    await saving.catch(() => undefined);
    const tails = await Promise.all(hostNumbers.map((n) => logTails(join(names.dir, `h${n}`))));
    await teardownState(state).catch(() => undefined);
    throw new Error(`the lab did not start: ${(err as Error).message}\n${tails.join('\n')}`);
  }
}

function makeHost(
  names: ReturnType<typeof labNames>,
  n: number,
  segment: SegmentIndex,
  etcdEndpoints: string[],
  engine: Engine,
  spec: HostSpec,
  replace: (proc: RecordedProcess) => Promise<void>,
): LabHost {
  const dir = join(names.dir, `h${n}`);
  const p = hostPaths(dir);
  const netns = names.hostNetns(n);
  const name = names.hostName(n);
  return {
    name,
    netns,
    netnsPath: `/run/netns/${netns}`,
    utsPath: join(names.dir, `uts-h${n}`),
    lanAddress: names.hostLanAddress(n, segment),
    segment,
    gateway: SEGMENTS[segment].gateway,
    dir,
    pluginSocketDir: p.pluginDir,
    execRoot: p.runDocker,
    dockerSocket: p.dockerSocket,
    logDir: p.logs,
    docker: async (args) => {
      try {
        return await run(engine.cli, ['-H', `unix://${p.dockerSocket}`, ...guardNoPull(args)]);
      } catch (err) {
        const message = (err as Error).message;
        if (!/No such image/i.test(message)) throw err;
        throw new Error(
          `${message}\nthe lab never pulls: a test may only name images in ${name}'s store (the lab imports ${IMAGE})`,
        );
      }
    },
    exec: (cmd, args) => inNetns(netns, cmd, args),
    flatnet: (args) => {
      const cli = flatnetCli();
      if (cli === undefined) return Promise.reject(new Error('the flatnet CLI is not built (dist/src/cli/main.js)'));
      return run('nsenter', [`--net=/run/netns/${netns}`, process.execPath, cli, ...args], {
        env: {
          ...process.env,
          FLATNET_ETCD_ENDPOINTS: etcdEndpoints.join(','),
          FLATNET_HOST_ID: name,
          FLATNET_STATE_DIR: p.state,
        },
      });
    },
    logTail: (lines) => logTails(dir, lines),
    killPlugin: () => killPlugin(spec),
    startPlugin: async () => replace(await startPlugin(spec)),
    restartDockerd: async () => replace(await restartDockerd(spec)),
    crash: () => killHost(`/run/netns/${netns}`, names.hostCgroup(n)),
  };
}
