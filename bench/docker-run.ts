/**
 * `docker run --rm flatnet-bb true` on one lab host: a flatnet network vs networks of Docker's built-in bridge
 * and macvlan drivers on the same daemon, interleaved so that all see the same machine noise. Prints medians
 * and the ratios flatnet/bridge and flatnet/macvlan.
 * Run: npx tsc -p . && node dist/bench/docker-run.js [runs] [--engine docker20|docker28]   (root, docker, etcd)
 */
import { DOCKER20, docker28, type Engine, IMAGE, LAN, startLab } from '../src/lab/lab.js';

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
const lab = await startLab({ hosts: 1, etcdMembers: 1, engine, name: `bench docker-run ${engine.name}` });
try {
  const host = lab.hosts[0]!;
  const version = (await host.docker(['version', '--format', '{{.Server.Version}}'])).trim();
  await host.docker([
    'network', 'create', '-d', 'flatnet', '--ipam-driver', 'flatnet', '--subnet', LAN.subnet,
    '--gateway', LAN.gateway, '--ip-range', LAN.containerRange, '-o', 'parent=eth0', 'flat',
  ]);
  await host.docker(['network', 'create', '-d', 'bridge', '--subnet', '10.97.0.0/24', 'builtin']);
  // eth0 is a port of flatnet's br0 now (a bridge port cannot also be a macvlan parent): macvlan hangs off br0.
  await host.docker(['network', 'create', '-d', 'macvlan', '--subnet', '10.96.0.0/24', '-o', 'parent=br0', 'mvlan']);
  const nets = ['flat', 'builtin', 'mvlan'] as const;
  const times: Record<(typeof nets)[number], number[]> = { flat: [], builtin: [], mvlan: [] };
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
  console.log(`docker run --rm ${IMAGE} true on Docker ${version} (${engine.name}), ${runs} runs each, interleaved`);
  console.log(`  flatnet network         median ${flat.toFixed(0)} ms`);
  console.log(`  built-in bridge         median ${builtin.toFixed(0)} ms`);
  console.log(`  built-in macvlan        median ${mvlan.toFixed(0)} ms`);
  console.log(`  ratio flatnet/bridge    ${(flat / builtin).toFixed(2)}   (target <= 1.00)`);
  console.log(`  ratio flatnet/macvlan   ${(flat / mvlan).toFixed(2)}`);
  await host.docker(['network', 'rm', 'flat', 'builtin', 'mvlan']);
} finally {
  await lab.stop();
}
