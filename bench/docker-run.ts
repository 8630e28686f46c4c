/**
 * `docker run --rm flatnet-bb true` on one lab host: a flatnet network vs networks of Docker's built-in bridge
 * and macvlan drivers on the same daemon, interleaved so that all see the same machine noise. Prints medians
 * and the ratios flatnet/bridge and flatnet/macvlan. A fourth network, of bench/minimal-remote-driver.ts (the
 * least a remote driver does), shows what Docker's remote-driver path costs by itself: the floor for any plugin.
 * Run: npx tsc -p . && node dist/bench/docker-run.js [runs] [--engine docker20|docker28]   (root, docker, etcd)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DOCKER20, docker28, type Engine, flatNetworkCreate, IMAGE, startLab } from '../src/lab/lab.js';
import { waitFor } from '../src/lab/processes.js';

function parseArgs(argv: string[]): { runs: number; engine: Engine } {
  let runs = 20;
  let engine: Engine = DOCKER20;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--engine') {
      const name = argv[++i];
      if (name === 'docker28') {
        const d28 = docker28();
        if (!d28) throw new Error('Docker 28 is not unpacked: run scripts/install-deps.sh as root');
        engine = d28;
      } else if (name !== 'docker20') throw new Error(`--engine takes docker20 or docker28, not ${name ?? 'nothing'}`);
    } else if (/^\d+$/.test(a)) runs = Math.max(20, Number(a));
    else throw new Error(`unknown argument ${a}`);
  }
  return { runs, engine };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const { runs, engine } = parseArgs(process.argv.slice(2));
// The plugin at its shipped log level (the lab's default is debug, for the tests' diagnostics).
const lab = await startLab({
  hosts: 1,
  etcdMembers: 1,
  engine,
  name: `bench docker-run ${engine.name}`,
  pluginEnv: { FLATNET_LOG_LEVEL: 'info' },
});
let minimal: ChildProcess | undefined;
try {
  const host = lab.hosts[0]!;
  const version = (await host.docker(['version', '--format', '{{.Server.Version}}'])).trim();
  await host.docker(flatNetworkCreate('flat'));
  await host.docker(['network', 'create', '-d', 'bridge', '--subnet', '10.97.0.0/24', 'builtin']);
  // eth0 is a port of flatnet's br0 now (a bridge port cannot also be a macvlan parent): macvlan hangs off br0.
  await host.docker(['network', 'create', '-d', 'macvlan', '--subnet', '10.96.0.0/24', '-o', 'parent=br0', 'mvlan']);
  // The minimal remote driver: its own bridge in the host's namespace, its socket where dockerd finds plugins.
  await host.exec('ip', ['link', 'add', 'fnmin0', 'type', 'bridge']);
  await host.exec('ip', ['link', 'set', 'fnmin0', 'up']);
  const socket = `${host.pluginSocketDir}/fnminimal.sock`;
  const script = fileURLToPath(new URL('./minimal-remote-driver.js', import.meta.url));
  minimal = spawn(
    'nsenter',
    [`--net=${host.netnsPath}`, '--', process.execPath, script, socket, 'fnmin0', '10.95.0.0/24'],
    { stdio: 'inherit' },
  );
  await waitFor('the minimal remote driver socket', async () => (existsSync(socket) ? true : undefined), 10_000, 50);
  await host.docker([
    'network',
    'create',
    '-d',
    'fnminimal',
    '--ipam-driver',
    'fnminimal',
    '--subnet',
    '10.95.0.0/24',
    '--gateway',
    '10.95.0.1',
    'minimal',
  ]);
  const nets = ['flat', 'builtin', 'mvlan', 'minimal'] as const;
  const times: Record<(typeof nets)[number], number[]> = { flat: [], builtin: [], mvlan: [], minimal: [] };
  for (const net of nets) await host.docker(['run', '--rm', '--net', net, IMAGE, 'true']); // warm-up
  for (let i = 0; i < runs; i++) {
    // Rotate the order so that no network always runs first (or right after another) in a round.
    const order = nets.map((_, k) => nets[(i + k) % nets.length]!);
    for (const net of order) {
      const t = process.hrtime.bigint();
      await host.docker(['run', '--rm', '--net', net, IMAGE, 'true']);
      times[net].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  const flat = median(times.flat);
  const builtin = median(times.builtin);
  const mvlan = median(times.mvlan);
  const floor = median(times.minimal);
  console.log(`docker run --rm ${IMAGE} true on Docker ${version} (${engine.name}), ${runs} runs each, interleaved`);
  console.log(`  flatnet network         median ${flat.toFixed(0)} ms`);
  console.log(`  built-in bridge         median ${builtin.toFixed(0)} ms`);
  console.log(`  built-in macvlan        median ${mvlan.toFixed(0)} ms`);
  console.log(`  minimal remote driver   median ${floor.toFixed(0)} ms   (bench/minimal-remote-driver.ts)`);
  console.log(`  ratio flatnet/bridge    ${(flat / builtin).toFixed(2)}   (target <= 1.00)`);
  console.log(`  ratio flatnet/macvlan   ${(flat / mvlan).toFixed(2)}   (target <= 1.00)`);
  console.log(`  ratio minimal/bridge    ${(floor / builtin).toFixed(2)}   (Docker's remote-driver path alone)`);
  console.log(`  ratio minimal/macvlan   ${(floor / mvlan).toFixed(2)}`);
  console.log(`  ratio flatnet/minimal   ${(flat / floor).toFixed(2)}   (what flatnet adds on top)`);
  await host.docker(['network', 'rm', 'flat', 'builtin', 'mvlan', 'minimal']);
} finally {
  minimal?.kill();
  await lab.stop();
}
