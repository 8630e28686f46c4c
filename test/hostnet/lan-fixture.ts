import { randomBytes } from 'node:crypto';
import { execArgs } from '../../src/hostnet/exec.js';
import { sh } from '../harness/sh.js';

export { sh };

/**
 * A "host" namespace whose eth0 (10.77.0.2/24, fd77::2/64, default routes, one static route) is wired to a
 * "router" namespace (10.77.0.1, fd77::1, and 10.66.0.1 reachable only through the default route).
 */
export interface Lan {
  host: string;
  router: string;
  remove(): Promise<void>;
}

export async function makeLan(): Promise<Lan> {
  const tag = randomBytes(3).toString('hex');
  const host = `fnth${tag}`;
  const router = `fntr${tag}`;
  const ns = (n: string, ...args: string[]) => sh('ip', ['-n', n, ...args]);
  await sh('ip', ['netns', 'add', host]);
  await sh('ip', ['netns', 'add', router]);
  const lan: Lan = {
    host,
    router,
    async remove() {
      await execArgs('ip', ['netns', 'del', host]);
      await execArgs('ip', ['netns', 'del', router]);
    },
  };
  try {
    // No duplicate address detection: addresses (link-local ones too) settle at once, so snapshots are stable.
    for (const n of [host, router]) {
      await sh('nsenter', [
        `--net=/run/netns/${n}`,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.accept_dad=0',
        'net.ipv6.conf.default.accept_dad=0',
      ]);
    }
    await ns(host, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', router);
    await sh(
      'ip',
      ['-n', host, '-batch', '-'],
      [
        'link set lo up',
        'link set eth0 up',
        'addr add 10.77.0.2/24 dev eth0',
        'addr add fd77::2/64 dev eth0 nodad',
      ].join('\n') + '\n',
    );
    await sh(
      'ip',
      ['-n', router, '-batch', '-'],
      [
        'link set lo up',
        'link set lan0 up',
        'addr add 10.77.0.1/24 dev lan0',
        'addr add fd77::1/64 dev lan0 nodad',
        'addr add 10.66.0.1/32 dev lo',
      ].join('\n') + '\n',
    );
    await sh(
      'ip',
      ['-n', host, '-batch', '-'],
      [
        'route add default via 10.77.0.1 dev eth0',
        'route add 10.88.0.0/16 via 10.77.0.1 dev eth0 proto static metric 50',
        'route add ::/0 via fd77::1 dev eth0',
      ].join('\n') + '\n',
    );
  } catch (err) {
    await lan.remove();
    throw err;
  }
  return lan;
}

/** One ICMP echo from a namespace; true when answered. */
export async function pings(netns: string, target: string): Promise<boolean> {
  const res = await execArgs('nsenter', [`--net=/run/netns/${netns}`, 'busybox', 'ping', '-c', '1', '-W', '2', target]);
  return res.code === 0;
}

async function json(netns: string, args: string[]): Promise<unknown[]> {
  const out = await sh('ip', ['-n', netns, '-j', ...args]);
  return out.trim() === '' ? [] : (JSON.parse(out) as unknown[]);
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

/** The namespace's links, addresses and routes, without counters and timers, for before/after equality. */
export async function snapshot(netns: string): Promise<unknown> {
  const links = (await json(netns, ['-d', 'link', 'show'])) as Record<string, unknown>[];
  const addrs = (await json(netns, ['addr', 'show'])) as { ifname: string; addr_info?: Record<string, unknown>[] }[];
  const routes4 = (await json(netns, ['-4', 'route', 'show', 'table', 'all'])) as Record<string, unknown>[];
  const routes6 = (await json(netns, ['-6', 'route', 'show', 'table', 'all'])) as Record<string, unknown>[];
  const routeKeys = ['type', 'dst', 'gateway', 'dev', 'table', 'protocol', 'scope', 'prefsrc', 'metric', 'flags'];
  return {
    links: links.map((l) => ({
      ...pick(l, ['ifname', 'flags', 'mtu', 'master', 'address', 'operstate']),
      kind: (l.linkinfo as { info_kind?: string } | undefined)?.info_kind,
    })),
    addrs: addrs.map((l) => ({
      ifname: l.ifname,
      addrs: (l.addr_info ?? []).map((a) => pick(a, ['family', 'local', 'prefixlen', 'broadcast', 'scope', 'label'])),
    })),
    routes4: routes4.map((r) => pick(r, routeKeys)),
    routes6: routes6.map((r) => pick(r, routeKeys)),
  };
}
