import type { LinkInfo } from './ip-json.js';
import { isFlatnetVeth } from './names.js';

/**
 * Which port of a bridge is the LAN NIC. One rule for the driver, the takeover, `flatnet bridge restore` and
 * doctor: every port that is not a flatnet endpoint veth counts as a NIC (an operator's own link included).
 */

/** The ports that are not flatnet endpoint veths. */
export function nicPorts(ports: readonly string[]): string[] {
  return ports.filter((p) => !isFlatnetVeth(p));
}

/**
 * The NIC among a bridge's ports: the one asked for when it is a port, else the single port that is not a
 * flatnet veth. Undefined when the bridge holds none, several, or not the one asked for.
 */
export function bridgeNic(ports: readonly string[], requested?: string): string | undefined {
  if (requested !== undefined) return ports.includes(requested) ? requested : undefined;
  const nics = nicPorts(ports);
  return nics.length === 1 ? nics[0] : undefined;
}

/** Names of the links enslaved to `bridge`, from `ip -j link` output. */
export function portsOf(links: readonly Pick<LinkInfo, 'ifname' | 'master'>[], bridge: string): string[] {
  return links.filter((l) => l.master === bridge).map((l) => l.ifname);
}
