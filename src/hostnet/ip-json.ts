import { z } from 'zod';
import { FlatnetError } from '../errors.js';
import type { IpRunner } from './ip-runner.js';
import { assertIfName } from './names.js';

/** The parts of `ip -j -d link` flatnet reads. */
export const linkSchema = z.object({
  ifindex: z.number(),
  ifname: z.string(),
  flags: z.array(z.string()).default([]),
  mtu: z.number(),
  operstate: z.string().optional(),
  master: z.string().optional(),
  address: z.string().optional(),
  linkinfo: z
    .object({
      info_kind: z.string().optional(),
      info_data: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});
export type LinkInfo = z.infer<typeof linkSchema>;

export const addrInfoSchema = z.object({
  family: z.string(),
  local: z.string(),
  prefixlen: z.number(),
  broadcast: z.string().optional(),
  scope: z.string().optional(),
  label: z.string().optional(),
  noprefixroute: z.boolean().optional(),
  dynamic: z.boolean().optional(),
});
export type AddrInfo = z.infer<typeof addrInfoSchema>;

const addrLinkSchema = z.object({ ifname: z.string(), addr_info: z.array(addrInfoSchema).default([]) });

export const routeSchema = z.object({
  type: z.string().optional(),
  dst: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  prefsrc: z.string().optional(),
  metric: z.number().optional(),
  flags: z.array(z.string()).default([]),
});
export type RouteInfo = z.infer<typeof routeSchema>;

function parse<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const res = schema.safeParse(data);
  if (!res.success) throw new FlatnetError('unavailable', `ip printed ${what} in a form flatnet does not understand.`);
  return res.data;
}

export async function listLinks(ip: IpRunner, extra: string[] = []): Promise<LinkInfo[]> {
  return parse(z.array(linkSchema), await ip.json(['-d', 'link', 'show', ...extra]), 'links');
}

const linkWithAddrsSchema = linkSchema.extend({ addr_info: z.array(addrInfoSchema).default([]) });
export type LinkWithAddrs = z.infer<typeof linkWithAddrsSchema>;

/** Every link with its addresses, from one `ip -j -d addr show` (doctor's view of the host). */
export async function listLinksWithAddrs(ip: IpRunner): Promise<LinkWithAddrs[]> {
  return parse(z.array(linkWithAddrsSchema), await ip.json(['-d', 'addr', 'show']), 'links and addresses');
}

/** The link, or undefined when it does not exist. */
export async function findLink(ip: IpRunner, name: string): Promise<LinkInfo | undefined> {
  assertIfName(name);
  const links = await listLinks(ip);
  return links.find((l) => l.ifname === name);
}

export async function linkAddrs(ip: IpRunner, dev: string): Promise<AddrInfo[]> {
  assertIfName(dev);
  const data = parse(z.array(addrLinkSchema), await ip.json(['addr', 'show', 'dev', dev]), 'addresses');
  return data.flatMap((l) => l.addr_info);
}

/** Main-table routes through a device, IPv4 then IPv6. */
export async function linkRoutes(ip: IpRunner, dev: string): Promise<{ v4: RouteInfo[]; v6: RouteInfo[] }> {
  assertIfName(dev);
  const [v4, v6] = await Promise.all([
    ip.json(['-4', 'route', 'show', 'table', 'main', 'dev', dev]),
    ip.json(['-6', 'route', 'show', 'table', 'main', 'dev', dev]),
  ]);
  // `dev X` filtering drops the dev field from the output; put it back so routes are self-describing.
  const withDev = (r: RouteInfo): RouteInfo => ({ ...r, dev: r.dev ?? dev });
  return {
    v4: parse(z.array(routeSchema), v4, 'routes').map(withDev),
    v6: parse(z.array(routeSchema), v6, 'routes').map(withDev),
  };
}

/** The device of the IPv4 (else IPv6) default route in the main table, if any. */
export async function defaultRouteDev(ip: IpRunner): Promise<string | undefined> {
  for (const family of ['-4', '-6']) {
    const routes = parse(
      z.array(routeSchema),
      await ip.json([family, 'route', 'show', 'table', 'main', 'default']),
      'routes',
    );
    const dev = routes.find((r) => r.dev !== undefined)?.dev;
    if (dev !== undefined) return dev;
  }
  return undefined;
}
