import { writeFile } from 'node:fs/promises';
import { LAN } from './names.js';
import { run } from './processes.js';

/** Runs a command inside a named network namespace (nsenter keeps /sys and the cgroup tree as they are). */
export function inNetns(netns: string, cmd: string, args: string[], input?: string): Promise<string> {
  return run('nsenter', [`--net=/run/netns/${netns}`, cmd, ...args], input === undefined ? {} : { input });
}

function ipBatch(netns: string, lines: string[]): Promise<string> {
  return run('ip', ['-n', netns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/**
 * The LAN: namespace `lanNetns` holds the switch (bridge lan0) and plays the router (the gateway address, no
 * uplink, no forwarding), so that nothing the bed sends can leave the machine. The root namespace gets no link.
 */
export async function createLan(lanNetns: string): Promise<void> {
  await run('ip', ['netns', 'add', lanNetns]);
  await ipBatch(lanNetns, [
    'link set lo up',
    'link add lan0 type bridge',
    `addr add ${LAN.gateway}/${LAN.prefixLength} dev lan0`,
    'link set lan0 up',
  ]);
  await inNetns(lanNetns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
}

/** One host: its namespace with `eth0` plugged into lan0, its address, a default route via the LAN router. */
export async function createHostNetns(opts: {
  lanNetns: string;
  netns: string;
  lanPort: string;
  address: string;
  forwardPolicyDrop: boolean;
}): Promise<void> {
  await run('ip', ['netns', 'add', opts.netns]);
  await ipBatch(opts.lanNetns, [
    `link add ${opts.lanPort} type veth peer name eth0 netns ${opts.netns}`,
    `link set ${opts.lanPort} master lan0`,
    `link set ${opts.lanPort} up`,
  ]);
  await ipBatch(opts.netns, [
    'link set lo up',
    `addr add ${opts.address}/${LAN.prefixLength} dev eth0`,
    'link set eth0 up',
    `route add default via ${LAN.gateway}`,
  ]);
  // New namespaces copy ip_forward from the root namespace; hosts are not routers.
  await inNetns(opts.netns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=0']);
  if (opts.forwardPolicyDrop) {
    // What a host that once ran dockerd with iptables on looks like: flatnet must still bridge its containers.
    await inNetns(opts.netns, 'iptables', ['-w', '-P', 'FORWARD', 'DROP']);
  }
}

/** A persistent UTS namespace (a bind-mounted nsfs file) with its own hostname. */
export async function createUts(file: string, hostname: string): Promise<void> {
  await writeFile(file, '');
  await run('unshare', [`--uts=${file}`, 'hostname', hostname]);
}

export async function deleteNetns(netns: string): Promise<void> {
  await run('ip', ['netns', 'del', netns]).catch(() => undefined);
}

export async function deleteUts(file: string): Promise<void> {
  await run('umount', [file]).catch(() => undefined);
}
