import { LAN } from '../../src/lab/lab.js';

/** `docker network create` of the lab's flat LAN as a flatnet network (driver and IPAM), the same on every host. */
export function flatNetworkCreate(name: string): string[] {
  return [
    'network',
    'create',
    '-d',
    'flatnet',
    '--ipam-driver',
    'flatnet',
    '--subnet',
    LAN.subnet,
    '--gateway',
    LAN.gateway,
    '--ip-range',
    LAN.containerRange,
    '-o',
    'parent=eth0',
    name,
  ];
}
