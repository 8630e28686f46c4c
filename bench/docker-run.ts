/**
 * `docker run --rm flatnet-bb true` on one lab host: a flatnet network vs a network of Docker's built-in
 * bridge driver on the same daemon, interleaved so that both see the same machine noise. Prints medians.
 * Run: npx tsc -p . && node dist/bench/docker-run.js [runs]   (root, docker, etcd)
 */
import { IMAGE, LAN, startLab } from '../src/lab/lab.js';

const runs = Math.max(20, Number(process.argv[2] ?? 20));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const lab = await startLab({ hosts: 1, etcdMembers: 1 });
try {
  const host = lab.hosts[0]!;
  await host.docker([
    'network', 'create', '-d', 'flatnet', '--ipam-driver', 'flatnet', '--subnet', LAN.subnet,
    '--gateway', LAN.gateway, '--ip-range', LAN.containerRange, '-o', 'parent=eth0', 'flat',
  ]);
  await host.docker(['network', 'create', '-d', 'bridge', '--subnet', '10.97.0.0/24', 'builtin']);
  const nets = ['flat', 'builtin'] as const;
  const times: Record<(typeof nets)[number], number[]> = { flat: [], builtin: [] };
  for (const net of nets) await host.docker(['run', '--rm', '--net', net, IMAGE, 'true']); // warm-up
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? nets : ([...nets].reverse() as unknown as typeof nets);
    for (const net of order) {
      const t = process.hrtime.bigint();
      await host.docker(['run', '--rm', '--net', net, IMAGE, 'true']);
      times[net].push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  }
  const flat = median(times.flat);
  const builtin = median(times.builtin);
  console.log(`docker run --rm ${IMAGE} true, ${runs} runs each, interleaved`);
  console.log(`  flatnet network        median ${flat.toFixed(0)} ms`);
  console.log(`  built-in bridge        median ${builtin.toFixed(0)} ms`);
  console.log(`  ratio flatnet/bridge   ${(flat / builtin).toFixed(2)}   (target <= 1.00)`);
  await host.docker(['network', 'rm', 'flat', 'builtin']);
} finally {
  await lab.stop();
}
