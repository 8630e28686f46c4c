import { FlatnetError } from '../errors.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Kernel interface names are at most 15 bytes; we also refuse anything that could be read as a path or option. */
export function isValidIfName(name: string): boolean {
  return IFNAME.test(name) && name !== '.' && name !== '..';
}

export function assertIfName(name: string, what = 'interface name'): string {
  if (!isValidIfName(name)) {
    throw new FlatnetError('invalid', `The ${what} "${name}" is not valid: use 1-15 letters, digits, '_', '.' or '-'.`);
  }
  return name;
}

/** Host-side and container-side veth names for an endpoint, derived from its id so they survive restarts. */
export interface VethNames {
  host: string;
  container: string;
}

export const HOST_VETH_PREFIX = 'fn';
export const CONTAINER_VETH_PREFIX = 'fc';

export function vethNames(endpointId: string): VethNames {
  const stem = endpointId.slice(0, 11);
  return {
    host: assertIfName(HOST_VETH_PREFIX + stem, 'host veth name'),
    container: assertIfName(CONTAINER_VETH_PREFIX + stem, 'container veth name'),
  };
}

/** A flatnet endpoint veth (either end): the prefix and 11 hex digits of an endpoint id. */
export function isFlatnetVeth(name: string): boolean {
  return new RegExp(`^(${HOST_VETH_PREFIX}|${CONTAINER_VETH_PREFIX})[0-9a-f]{11}$`).test(name);
}
