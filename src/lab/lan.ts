import { writeFile } from 'node:fs/promises';
import { SEGMENTS, type SegmentIndex } from './names.js';
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
 * uplink), so that nothing the bed sends can leave the machine. The root namespace gets no link. With two
 * segments it holds a second switch (lan1, SEGMENT2) and routes between the two, and only between them: it has
 * no other link, so a routed packet can only go to the other segment.
 */
export async function createLan(lanNetns: string, segments: 1 | 2 = 1): Promise<void> {
  await run('ip', ['netns', 'add', lanNetns]);
  const lines = ['link set lo up'];
  for (const [i, seg] of SEGMENTS.slice(0, segments).entries()) {
    lines.push(
      `link add lan${i} type bridge`,
      `addr add ${seg.gateway}/${seg.prefixLength} dev lan${i}`,
      `link set lan${i} up`,
    );
  }
  await ipBatch(lanNetns, lines);
  await inNetns(lanNetns, 'sysctl', ['-qw', `net.ipv4.ip_forward=${segments === 2 ? 1 : 0}`]);
}

/**
 * One host: its namespace with `eth0` plugged into its segment's switch (lan0 by default), its address, a
 * default route via that segment's router address.
 */
export async function createHostNetns(opts: {
  lanNetns: string;
  netns: string;
  lanPort: string;
  address: string;
  forwardPolicyDrop: boolean;
  segment?: SegmentIndex;
}): Promise<void> {
  const segment = opts.segment ?? 0;
  const seg = SEGMENTS[segment];
  await run('ip', ['netns', 'add', opts.netns]);
  await ipBatch(opts.lanNetns, [
    `link add ${opts.lanPort} type veth peer name eth0 netns ${opts.netns}`,
    `link set ${opts.lanPort} master lan${segment}`,
    `link set ${opts.lanPort} up`,
  ]);
  await ipBatch(opts.netns, [
    'link set lo up',
    `addr add ${opts.address}/${seg.prefixLength} dev eth0`,
    'link set eth0 up',
    `route add default via ${seg.gateway}`,
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
