import { z } from 'zod';
import { type Engine, IMAGE, LAN, type Lab, type LabHost, startLab } from './lab.js';

export { teardownLab } from './teardown.js';

export interface DemoOptions {
  /** Leave the bed running and print how to remove it. */
  keep: boolean;
  log: (line: string) => void;
  /** The Docker engine of the demo's hosts (default Debian's docker.io 20.10). */
  engine?: Engine;
}

const NETWORK = 'lan';
/** Which container runs where: two on h1 show the same-host path, the others the cross-host one. */
const CONTAINERS: { name: string; host: number }[] = [
  { name: 'web1', host: 0 },
  { name: 'web2', host: 1 },
  { name: 'db1', host: 2 },
  { name: 'cache1', host: 0 },
];

const listedAssignment = z
  .object({ address: z.string(), hostId: z.string(), macAddress: z.string().optional() })
  .passthrough();

function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

async function inspect(host: LabHost, name: string, field: 'IPAddress' | 'MacAddress'): Promise<string> {
  return (
    await host.docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").${field}}}`, name])
  ).trim();
}

/**
 * The multi-host demo: three Docker hosts on one LAN (namespaces on this machine), one flat network created
 * the same way on each, containers on different hosts pinging each other with addresses handed out by etcd.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const { log } = opts;
  const t0 = Date.now();
  const total = 6;
  let n = 0;
  const step = (what: string) => log(`[${++n}/${total}] ${what}`);
  const done = (detail = '') =>
    log(`      done in ${((Date.now() - t0) / 1000).toFixed(1)} s${detail ? ` — ${detail}` : ''}`);

  step(
    'Starting a lab: 3 hosts (network namespaces on one LAN 10.99.0.0/16), 3 etcd members, a dockerd and a flatnet plugin per host',
  );
  const lab: Lab = await startLab({
    hosts: 3,
    name: 'demo',
    etcdMembers: 3,
    ...(opts.engine ? { engine: opts.engine } : {}),
  });
  let kept = false;
  try {
    done(`lab ${lab.id}: ${lab.hosts.map((h) => `${h.name}=${h.lanAddress}`).join(', ')}, etcd on ${LAN.gateway}`);
    const h1 = lab.hosts[0]!;

    step(`Adding the container address range ${LAN.containerRange} to the pool ${LAN.subnet} (in etcd)`);
    log(
      `      ${(await h1.flatnet(['ip-range', 'add', '--ip-start', '10.99.128.1/16', '--ip-end', '10.99.143.254/16'])).trim()}`,
    );
    done();

    step('Creating the flat network "lan" on every host (flatnet create-network; eth0 moves into bridge br0)');
    for (const h of lab.hosts) {
      const out = await h.flatnet([
        // No --ip-range: the pool already holds the range added in step 2.
        'create-network',
        '--name',
        NETWORK,
        '--subnet',
        LAN.subnet,
        '--gateway',
        LAN.gateway,
        '--parent',
        'eth0',
        '--docker-host',
        `unix://${h.dockerSocket}`,
      ]);
      log(`      ${h.name}: ${out.trim().split('\n').pop() ?? ''}`);
    }
    done();

    step(`Starting ${CONTAINERS.length} containers on different hosts`);
    for (const c of CONTAINERS) {
      const host = lab.hosts[c.host]!;
      await host.docker([
        'run',
        '-d',
        '--name',
        c.name,
        '--hostname',
        c.name,
        '--net',
        NETWORK,
        IMAGE,
        'sleep',
        '3600',
      ]);
      log(`      ${c.name} on ${host.name}`);
    }
    done();

    step('Every container pings every other one, across hosts, and the LAN gateway');
    const addresses = new Map<string, string>();
    for (const c of CONTAINERS) addresses.set(c.name, await inspect(lab.hosts[c.host]!, c.name, 'IPAddress'));
    let failures = 0;
    for (const from of CONTAINERS) {
      const targets = [...CONTAINERS.filter((c) => c.name !== from.name).map((c) => c.name), 'gateway'];
      const results: string[] = [];
      for (const t of targets) {
        const address = t === 'gateway' ? LAN.gateway : addresses.get(t)!;
        try {
          const out = await lab.hosts[from.host]!.docker(['exec', from.name, 'ping', '-c', '1', '-w', '3', address]);
          const ms = /time=([\d.]+) ms/.exec(out)?.[1];
          results.push(`${t} ok${ms ? ` (${ms} ms)` : ''}`);
        } catch {
          failures++;
          results.push(`${t} FAILED`);
        }
      }
      log(`      ${from.name.padEnd(6)} → ${results.join(', ')}`);
    }
    done(failures === 0 ? 'all pings answered' : `${failures} pings FAILED`);

    step('Addresses as Docker sees them and as etcd records them');
    const records = z.array(listedAssignment).parse(JSON.parse(await h1.flatnet(['ip', 'list', '--json'])));
    const rows: string[][] = [];
    for (const c of CONTAINERS) {
      const host = lab.hosts[c.host]!;
      const address = addresses.get(c.name) ?? '';
      const record = records.find((r) => r.address === address);
      rows.push([
        c.name,
        host.name,
        address,
        record ? `held by ${record.hostId}` : 'MISSING',
        await inspect(host, c.name, 'MacAddress'),
      ]);
    }
    for (const line of table(['CONTAINER', 'HOST', 'ADDRESS', 'ETCD RECORD', 'MAC'], rows)) log(`      ${line}`);
    done();
    if (failures > 0) throw new Error(`${failures} pings failed; host logs:\n${await lab.diagnostics()}`);

    if (opts.keep) {
      kept = true;
      log('');
      log(`The lab ${lab.id} keeps running. Look around, e.g.:`);
      log(`  ${lab.engine.cli} -H unix://${h1.dockerSocket} ps`);
      log(`  nsenter --net=${h1.netnsPath} ip addr show br0`);
      log(`  logs: ${lab.dir}/h*/logs/`);
      log(`Remove it with:  flatnet demo --teardown ${lab.id}`);
    }
  } finally {
    if (!kept) {
      log('Cleaning up: containers, networks, daemons, etcd, namespaces, cgroups, temp files');
      await lab.stop();
      log(`      done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
}
