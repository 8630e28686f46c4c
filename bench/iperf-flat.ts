/**
 * iperf3 TCP throughput, container to container across two lab hosts on the flatnet network, against host to
 * host over the same LAN (eth0 before the network exists, br0 after). iperf3 runs from the host's file system
 * inside each container's network namespace (nsenter --net=/proc/PID/ns/net), so the image needs no iperf3.
 * Run: npx tsc -p . && node dist/bench/iperf-flat.js [seconds]   (root, docker, etcd, iperf3)
 */
import { z } from 'zod';
import { flatNetworkCreate, IMAGE, type LabHost, startLab } from '../src/lab/lab.js';
import { run, startProcess, waitFor } from '../src/lab/processes.js';

const seconds = Number(process.argv[2] ?? 4);
const rounds = 3;
const iperfResult = z.object({ end: z.object({ sum_received: z.object({ bits_per_second: z.number() }) }) });

async function containerNetns(host: LabHost, name: string): Promise<string> {
  const pid = (await host.docker(['inspect', '--format', '{{.State.Pid}}', name])).trim();
  return `/proc/${pid}/ns/net`;
}

/** One iperf3 run: a one-shot server in `serverNetns` bound to `address`, the client in `clientNetns`. */
async function iperf(serverNetns: string, clientNetns: string, address: string): Promise<number> {
  const server = startProcess('nsenter', [`--net=${serverNetns}`, 'iperf3', '-s', '-1', '-B', address]);
  server.child.stdout?.resume();
  server.child.stderr?.resume();
  try {
    // The client may only start once the server listens, or it fails at once (iperf3 buffers its own output).
    await waitFor(
      'the iperf3 server',
      async () => {
        const listening = await run('nsenter', [`--net=${serverNetns}`, 'ss', '-Hltn', 'sport', '= :5201']);
        return listening.trim() === '' ? undefined : true;
      },
      10_000,
      50,
    );
    const out = await run('nsenter', [`--net=${clientNetns}`, 'iperf3', '-c', address, '-t', String(seconds), '-J']);
    const parsed = iperfResult.safeParse(JSON.parse(out));
    if (!parsed.success) throw new Error(`iperf3 gave no result: ${out.slice(0, 500)}`);
    return parsed.data.end.sum_received.bits_per_second / 1e9;
  } finally {
    await server.stop('SIGKILL');
  }
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const lab = await startLab({ hosts: 2, etcdMembers: 1 });
try {
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  const eth0: number[] = [];
  for (let i = 0; i < rounds; i++) eth0.push(await iperf(h2.netnsPath, h1.netnsPath, h2.lanAddress));

  for (const h of [h1, h2]) {
    await h.docker(flatNetworkCreate('lan'));
  }
  await h1.docker(['run', '-d', '--name', 'client', '--net', 'lan', IMAGE, 'sleep', '3600']);
  await h2.docker(['run', '-d', '--name', 'server', '--net', 'lan', IMAGE, 'sleep', '3600']);
  const serverAddress = (
    await h2.docker(['inspect', '--format', '{{(index .NetworkSettings.Networks "lan").IPAddress}}', 'server'])
  ).trim();
  const [clientNs, serverNs] = [await containerNetns(h1, 'client'), await containerNetns(h2, 'server')];

  const br0: number[] = [];
  const c2c: number[] = [];
  for (let i = 0; i < rounds; i++) {
    br0.push(await iperf(h2.netnsPath, h1.netnsPath, h2.lanAddress));
    c2c.push(await iperf(serverNs, clientNs, serverAddress));
  }
  console.log(`iperf3 TCP, ${seconds} s x ${rounds} rounds (interleaved), MTU 1500, veth LAN in namespaces`);
  console.log(
    `  host to host over eth0 (before flatnet)   ${avg(eth0).toFixed(1)} Gbit/s  [${eth0.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(
    `  host to host over br0                     ${avg(br0).toFixed(1)} Gbit/s  [${br0.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(
    `  container to container across hosts       ${avg(c2c).toFixed(1)} Gbit/s  [${c2c.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(`  ratio container/host (br0)                ${(avg(c2c) / avg(br0)).toFixed(2)}   (target >= 0.95)`);
  console.log(`  ratio container/host (eth0)               ${(avg(c2c) / avg(eth0)).toFixed(2)}`);
} finally {
  await lab.stop();
}
