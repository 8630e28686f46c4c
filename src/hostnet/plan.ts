import type { IpCommand } from './batch.js';
import type { AddrInfo, LinkInfo, RouteInfo } from './ip-json.js';
import type { Step } from './steps.js';

/** Addresses that belong to the host on the LAN: all IPv4, IPv6 of global scope (link-local stays per link). */
export function movableAddrs(addrs: readonly AddrInfo[]): AddrInfo[] {
  return addrs.filter((a) => a.family === 'inet' || (a.family === 'inet6' && a.scope === 'global'));
}

/**
 * Routes to carry over. The kernel re-creates its own (connected, link-local) ones for the new device, except
 * for addresses marked noprefixroute: NetworkManager adds their prefix route itself (as proto kernel, with its
 * metric), and without it the default route's gateway is unreachable. On-link routes go first, so that every
 * gateway is reachable when the routes through it are added.
 */
export function movableRoutes(routes: readonly RouteInfo[], addrs: readonly AddrInfo[]): RouteInfo[] {
  const noPrefixRoute = new Set(addrs.filter((a) => a.noprefixroute === true).map((a) => a.local));
  const movable = routes.filter(
    (r) =>
      (r.protocol !== 'kernel' || (r.prefsrc !== undefined && noPrefixRoute.has(r.prefsrc))) &&
      (r.type === undefined || r.type === 'unicast'),
  );
  return [...movable.filter((r) => r.gateway === undefined), ...movable.filter((r) => r.gateway !== undefined)];
}

function routeDst(r: RouteInfo, v6: boolean): string {
  if (r.dst === 'default') return v6 ? '::/0' : '0.0.0.0/0';
  return r.dst;
}

export function routeAddCommand(r: RouteInfo, dev: string, v6: boolean): IpCommand {
  const cmd = ['route', 'add', routeDst(r, v6)];
  if (r.gateway !== undefined) cmd.push('via', r.gateway);
  cmd.push('dev', dev);
  if (r.protocol !== undefined) cmd.push('proto', r.protocol);
  // IPv6 has no route scope; IPv4 prints it only when it is not the default (universe).
  if (!v6 && r.scope !== undefined) cmd.push('scope', r.scope);
  if (r.prefsrc !== undefined) cmd.push('src', r.prefsrc);
  if (r.metric !== undefined) cmd.push('metric', String(r.metric));
  if (r.flags.includes('onlink')) cmd.push('onlink');
  return cmd;
}

export function routeDelCommand(r: RouteInfo, dev: string, v6: boolean): IpCommand {
  const cmd = ['route', 'del', routeDst(r, v6)];
  if (r.gateway !== undefined) cmd.push('via', r.gateway);
  cmd.push('dev', dev);
  if (r.metric !== undefined) cmd.push('metric', String(r.metric));
  return cmd;
}

/** An address label names its device ("eth0:1"); on another device it must be renamed or dropped. */
function relabel(label: string | undefined, from: string, to: string): string | undefined {
  if (label === undefined || label === from || !label.startsWith(`${from}:`)) return undefined;
  const renamed = to + label.slice(from.length);
  return renamed.length <= 15 ? renamed : undefined;
}

export function addrAddCommand(a: AddrInfo, from: string, dev: string): IpCommand {
  const cmd = ['addr', 'add', `${a.local}/${a.prefixlen}`, 'dev', dev];
  if (a.family === 'inet' && a.broadcast !== undefined) cmd.push('broadcast', a.broadcast);
  const label = relabel(a.label, from, dev);
  if (label !== undefined) cmd.push('label', label);
  if (a.noprefixroute === true) cmd.push('noprefixroute');
  // The address was already in use on the LAN: duplicate detection would only make it unusable for a while.
  if (a.family === 'inet6') cmd.push('nodad');
  return cmd;
}

export function addrDelCommand(a: AddrInfo, dev: string): IpCommand {
  return ['addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', dev];
}

export interface TakeoverInput {
  bridge: string;
  nic: LinkInfo;
  /** The bridge when it already exists (created earlier without holding the NIC). */
  existingBridge?: LinkInfo;
  nicAddrs: readonly AddrInfo[];
  nicRoutes: { v4: readonly RouteInfo[]; v6: readonly RouteInfo[] };
}

function bridgeInfo(link: LinkInfo, key: string): string | undefined {
  const v = link.linkinfo?.info_data?.[key];
  return typeof v === 'number' || typeof v === 'string' ? String(v) : undefined;
}

/**
 * The bridge takeover as ordered steps: the bridge takes the NIC's MAC and MTU and the NIC as a port,
 * then the NIC's addresses and routes move to the bridge. Routes leave the NIC before they are added to
 * the bridge because IPv4 keys routes without the device (a second "default" would be refused), and the
 * NIC's addresses go last, secondaries before the primary (deleting a primary drops its secondaries).
 */
export function planTakeover(input: TakeoverInput): Step[] {
  const { bridge, nic } = input;
  const steps: Step[] = [];
  const existing = input.existingBridge;
  if (existing === undefined) {
    steps.push({
      name: 'create bridge',
      do: ['link', 'add', 'name', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'],
      undo: [['link', 'del', 'dev', bridge]],
    });
  } else {
    // Two commands: the kernel applies forward_delay before stp_state, and refuses 0 while STP is still on.
    const stp = bridgeInfo(existing, 'stp_state');
    const fd = bridgeInfo(existing, 'forward_delay');
    steps.push({
      name: 'bridge STP off',
      do: ['link', 'set', 'dev', bridge, 'type', 'bridge', 'stp_state', '0'],
      undo: stp !== undefined ? [['link', 'set', 'dev', bridge, 'type', 'bridge', 'stp_state', stp]] : [],
    });
    steps.push({
      name: 'bridge forward delay 0',
      do: ['link', 'set', 'dev', bridge, 'type', 'bridge', 'forward_delay', '0'],
      undo: fd !== undefined ? [['link', 'set', 'dev', bridge, 'type', 'bridge', 'forward_delay', fd]] : [],
    });
  }
  const setMac: string[] = ['link', 'set', 'dev', bridge];
  if (nic.address !== undefined) setMac.push('address', nic.address);
  setMac.push('mtu', String(nic.mtu));
  const restoreBridge: string[] = ['link', 'set', 'dev', bridge];
  if (existing?.address !== undefined) restoreBridge.push('address', existing.address);
  if (existing !== undefined) restoreBridge.push('mtu', String(existing.mtu));
  steps.push({ name: 'bridge takes NIC MAC and MTU', do: setMac, undo: existing ? [restoreBridge] : [] });
  steps.push({
    name: 'enslave NIC',
    do: ['link', 'set', 'dev', nic.ifname, 'master', bridge],
    undo: [['link', 'set', 'dev', nic.ifname, 'nomaster']],
  });
  const bridgeWasUp = existing?.flags.includes('UP') ?? false;
  steps.push({
    name: 'bridge up',
    do: ['link', 'set', 'dev', bridge, 'up'],
    undo: existing && !bridgeWasUp ? [['link', 'set', 'dev', bridge, 'down']] : [],
  });

  const addrs = movableAddrs(input.nicAddrs);
  for (const a of addrs) {
    steps.push({
      name: `address ${a.local}/${a.prefixlen} on bridge`,
      do: addrAddCommand(a, nic.ifname, bridge),
      undo: [addrDelCommand(a, bridge)],
    });
  }
  const routes = [
    ...movableRoutes(input.nicRoutes.v4, input.nicAddrs).map((r) => ({ r, v6: false })),
    ...movableRoutes(input.nicRoutes.v6, input.nicAddrs).map((r) => ({ r, v6: true })),
  ];
  // Gateway routes leave first, so that a rollback (undo in reverse) re-adds on-link routes before them.
  for (const { r, v6 } of [...routes].reverse()) {
    steps.push({
      name: `route ${r.dst} off NIC`,
      do: routeDelCommand(r, nic.ifname, v6),
      undo: [routeAddCommand(r, nic.ifname, v6)],
    });
  }
  for (const { r, v6 } of routes) {
    steps.push({
      name: `route ${r.dst} on bridge`,
      do: routeAddCommand(r, bridge, v6),
      undo: [routeDelCommand(r, bridge, v6)],
    });
  }
  for (const a of [...addrs].reverse()) {
    steps.push({
      name: `address ${a.local}/${a.prefixlen} off NIC`,
      do: addrDelCommand(a, nic.ifname),
      undo: [addrAddCommand(a, nic.ifname, nic.ifname)],
    });
  }
  return steps;
}

export interface RestoreInput {
  bridge: string;
  nic: string;
  bridgeAddrs: readonly AddrInfo[];
  bridgeRoutes: { v4: readonly RouteInfo[]; v6: readonly RouteInfo[] };
}

/** The reverse move: routes and addresses back to the NIC, NIC out of the bridge, bridge deleted. */
export function planRestore(input: RestoreInput): Step[] {
  const { bridge, nic } = input;
  const steps: Step[] = [];
  const routes = [
    ...movableRoutes(input.bridgeRoutes.v4, input.bridgeAddrs).map((r) => ({ r, v6: false })),
    ...movableRoutes(input.bridgeRoutes.v6, input.bridgeAddrs).map((r) => ({ r, v6: true })),
  ];
  for (const { r, v6 } of routes) {
    steps.push({
      name: `route ${r.dst} off bridge`,
      do: routeDelCommand(r, bridge, v6),
      undo: [routeAddCommand(r, bridge, v6)],
    });
  }
  steps.push({
    name: 'release NIC',
    do: ['link', 'set', 'dev', nic, 'nomaster'],
    undo: [['link', 'set', 'dev', nic, 'master', bridge]],
  });
  for (const a of movableAddrs(input.bridgeAddrs)) {
    steps.push({
      name: `address ${a.local}/${a.prefixlen} on NIC`,
      do: addrAddCommand(a, bridge, nic),
      undo: [addrDelCommand(a, nic)],
    });
  }
  for (const { r, v6 } of routes) {
    steps.push({
      name: `route ${r.dst} on NIC`,
      do: routeAddCommand(r, nic, v6),
      undo: [routeDelCommand(r, nic, v6)],
    });
  }
  // Last, so nothing after it can fail: deleting the bridge also drops its addresses and connected routes.
  steps.push({ name: 'delete bridge', do: ['link', 'del', 'dev', bridge], undo: [] });
  return steps;
}
