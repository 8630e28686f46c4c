/**
 * Identifier shapes shared by every edge (plugin API, state files, CLI, config). One pattern each, so that an ID
 * one edge accepts is never refused by another.
 */

/** Docker's network and endpoint IDs (64 hex digits in practice); also safe as file and interface name material. */
export const DOCKER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** A flatnet host id (default: /etc/machine-id): stored in every claim and assignment record. */
export const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Linux interface names: IFNAMSIZ - 1 characters, no '/', no spaces. */
export const INTERFACE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Colon-form MAC address, either case. */
export const MAC_ADDRESS = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;

export function isDockerId(s: string): boolean {
  return DOCKER_ID.test(s);
}

export function isHostId(s: string): boolean {
  return HOST_ID.test(s);
}
