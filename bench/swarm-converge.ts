/**
 * Swarm convergence: a 20-replica dnsrr service on 3 Docker 28 nodes, on a swarm-scoped flatnet network (the
 * managed plugin, addresses from etcd) vs Docker's own overlay network, rounds interleaved so that both see the
 * same machine. Time from `docker service create` to every replica running, then the service is removed and its
 * tasks waited out, and the cluster left to settle, before the next round: a service created while the last one's
 * containers are still being killed and cleaned up took twice as long on either network (16-18 s vs 8 s for
 * overlay, measured), which measured the order of the rounds, not the networks. Prints medians and the ratio.
 * Run: npx tsc -p . && node dist/bench/swarm-converge.js [rounds]   (root, docker 28 unpacked, etcd)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker28, IMAGE, type LabHost, startLab } from '../src/lab/lab.js';
import { waitFor } from '../src/lab/processes.js';
import { buildPluginDir, formFlatSwarm, installPlugin, removePlugin } from '../test/e2e/managed-plugin-host.js';

const PLUGIN = 'flatnet:latest';
const REPLICAS = 20;
const SETTLE_MS = 10_000;
const rounds = Math.max(3, Number(process.argv[2] ?? 5));
const engine = docker28();
if (!engine) throw new Error('Docker 28 is not unpacked: run scripts/install-deps.sh as root');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Containers of the service on the host, stopped ones too (removal done = none left). */
async function tasksOn(host: LabHost, service: string): Promise<number> {
  const out = await host.docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${service}`]);
  return out.split('\n').filter((l) => l !== '').length;
}

const work = await mkdtemp(join(tmpdir(), 'flatnet-swarm-bench-'));
const building = buildPluginDir(work);
building.catch(() => undefined);
const lab = await startLab({ hosts: 3, plugin: false, etcdMembers: 1, engine, name: 'bench swarm-converge' });
const [manager] = lab.hosts as [LabHost, ...LabHost[]];
try {
  const pluginDir = await building;
  await Promise.all(lab.hosts.map((h) => installPlugin(lab, h, PLUGIN, pluginDir, work)));
  await formFlatSwarm(lab, PLUGIN, 'flat');
  await manager.docker(['network', 'create', '-d', 'overlay', '--subnet', '10.95.0.0/16', 'ovl']);
  const nets = ['flat', 'ovl'] as const;
  const times: Record<(typeof nets)[number], number[]> = { flat: [], ovl: [] };
  const converge = async (net: (typeof nets)[number], name: string): Promise<number> => {
    const t = process.hrtime.bigint();
    await manager.docker([
      'service',
      'create',
      '--detach',
      '--name',
      name,
      '--replicas',
      String(REPLICAS),
      '--endpoint-mode',
      'dnsrr',
      '--network',
      net,
      IMAGE,
      'sleep',
      '3600',
    ]);
    await waitFor(
      `${name} converged`,
      async () => {
        const replicas = (
          await manager.docker(['service', 'ls', '--filter', `name=${name}`, '--format', '{{.Replicas}}'])
        ).trim();
        return replicas === `${REPLICAS}/${REPLICAS}` ? true : undefined;
      },
      180_000,
      100,
    );
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    await manager.docker(['service', 'rm', name]);
    await waitFor(
      `${name} gone`,
      async () =>
        (await Promise.all(lab.hosts.map((h) => tasksOn(h, name)))).every((n) => n === 0) ? true : undefined,
      120_000,
      200,
    );
    // containerd's and the network drivers' cleanup goes on after the containers are gone from dockerd's list.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return ms;
  };
  await converge('flat', 'warmflat');
  await converge('ovl', 'warmovl');
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? nets : ([...nets].reverse() as unknown as typeof nets);
    for (const net of order) times[net].push(await converge(net, `s${net}${i}`));
  }
  const flat = median(times.flat);
  const ovl = median(times.ovl);
  console.log(
    `${REPLICAS}-replica dnsrr service on 3 nodes (Docker ${(await manager.docker(['version', '--format', '{{.Server.Version}}'])).trim()}), ${rounds} rounds each, interleaved`,
  );
  console.log(
    `  flatnet (managed plugin) median ${flat.toFixed(0)} ms   [${times.flat.map((x) => x.toFixed(0)).join(', ')}]`,
  );
  console.log(
    `  overlay                  median ${ovl.toFixed(0)} ms   [${times.ovl.map((x) => x.toFixed(0)).join(', ')}]`,
  );
  console.log(`  ratio flatnet/overlay    ${(flat / ovl).toFixed(2)}   (target <= 1.00)`);
} finally {
  await manager.docker(['network', 'rm', 'flat', 'ovl']).catch(() => undefined);
  for (const h of lab.hosts) await h.docker(['network', 'rm', 'lanconf']).catch(() => undefined);
  for (const h of [...lab.hosts].reverse()) await h.docker(['swarm', 'leave', '--force']).catch(() => undefined);
  await Promise.all(lab.hosts.map((h) => removePlugin(h, PLUGIN)));
  await lab.stop();
  await rm(work, { recursive: true, force: true });
}
