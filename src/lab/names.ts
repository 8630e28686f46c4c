import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The LAN every bed simulates; beds never share it because each lives in namespaces of its own. */
export const LAN = {
  subnet: '10.99.0.0/16',
  prefixLength: 16,
  gateway: '10.99.0.1',
  /** Containers' addresses come from here in the suites and the demo (outside the hosts' addresses). */
  containerRange: '10.99.128.0/20',
} as const;

/**
 * `docker network create` of the lab's flat LAN as a flatnet network (driver and IPAM), the same on every host;
 * `ipRange: false` leaves the containers' range to `flatnet ip-range add`.
 */
export function flatNetworkCreate(name: string, { ipRange = true }: { ipRange?: boolean } = {}): string[] {
  return [
    ...['network', 'create', '-d', 'flatnet', '--ipam-driver', 'flatnet'],
    ...['--subnet', LAN.subnet, '--gateway', LAN.gateway],
    ...(ipRange ? ['--ip-range', LAN.containerRange] : []),
    ...['-o', 'parent=eth0', name],
  ];
}

/**
 * A second LAN segment (another rack) for beds with `segments`: its own bridge in the LAN namespace, which then
 * routes between the two (still no uplink: nothing leaves the machine).
 */
export const SEGMENT2 = {
  subnet: '10.98.0.0/16',
  prefixLength: 16,
  gateway: '10.98.0.1',
  containerRange: '10.98.128.0/20',
} as const;

/** The segments a bed can have: 0 is LAN (bridge lan0), 1 is SEGMENT2 (bridge lan1). */
export const SEGMENTS = [LAN, SEGMENT2] as const;
export type SegmentIndex = 0 | 1;

export function newLabId(): string {
  return randomBytes(3).toString('hex');
}

export function isLabId(id: string): boolean {
  return /^[0-9a-f]{6}$/.test(id);
}

/** Every name of a bed carries its id, so that two beds never collide and leftovers are easy to find. */
export function labNames(id: string) {
  const bed = `fl${id}`;
  return {
    bed,
    dir: join(tmpdir(), `flatnet-lab-${id}`),
    lanNetns: `${bed}-lan`,
    hostNetns: (n: number) => `${bed}-h${n}`,
    hostName: (n: number) => `h${n}`,
    /** Docker's --cgroup-parent for host n; the host's daemons sit in its "daemons" child. */
    hostCgroup: (n: number) => `${bed}-h${n}`,
    /** Host n's address on its segment: 10.99.0.(10+n), or 10.98.0.(10+n) on the second segment. */
    hostLanAddress: (n: number, segment: SegmentIndex = 0) => `${segment === 0 ? '10.99' : '10.98'}.0.${10 + n}`,
    /** The LAN switch port of host n, inside the LAN namespace. */
    lanPort: (n: number) => `port${n}`,
  };
}
