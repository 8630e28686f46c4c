import { defaultRouteDev, findLink, linkAddrs, linkRoutes } from './ip-json.js';
import type { IpRunner } from './ip-runner.js';

/**
 * What the host's own NIC says about its segment: its global addresses and default gateways. Read for
 * `flatnet create-network` without --subnet (the network's subnet is the segment the NIC sits on).
 */
export type NicFacts =
  | {
      found: true;
      /** The NIC asked for (--parent) or, without one, the device of the default route. */
      nic: string;
      /** The device holding the NIC's addresses: the NIC, or its master once a bridge (br0) or bond took it. */
      holder: string;
      /** Global-scope addresses on the holder, as CIDRs (10.98.0.11/16), in ip's order. */
      addresses: string[];
      /** Gateways of the main table's default routes through the holder (IPv4 first). */
      gateways: string[];
    }
  /** `parent` was asked for and does not exist; without `parent`, no default route names a device. */
  | { found: false; parent?: string };

/** Reads the NIC's facts with `ip -j` (argument arrays; in the IpRunner's namespace). */
export async function readNicFacts(ip: IpRunner, parent?: string): Promise<NicFacts> {
  const nic = parent ?? (await defaultRouteDev(ip));
  if (nic === undefined) return { found: false };
  const link = await findLink(ip, nic);
  if (link === undefined) return parent === undefined ? { found: false } : { found: false, parent };
  const holder = link.master ?? nic;
  const [addrs, routes] = await Promise.all([linkAddrs(ip, holder), linkRoutes(ip, holder)]);
  return {
    found: true,
    nic,
    holder,
    addresses: addrs.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
    gateways: [...routes.v4, ...routes.v6].flatMap((r) =>
      r.dst === 'default' && r.gateway !== undefined ? [r.gateway] : [],
    ),
  };
}
