import { bridgeNic } from '../../hostnet/bridge-ports.js';
import { isFlatnetVeth } from '../../hostnet/names.js';

/**
 * `flatnet doctor` as pure functions: each check looks at facts gathered beforehand (gather.ts) and says
 * pass, fail (with the command or step that fixes it) or skip (with why). No I/O here, so every verdict has a
 * unit test.
 */

export type EtcdFact =
  | { ok: true; endpoints: string[]; auth: boolean }
  | { ok: false; endpoints: string[]; reason: string; authRefused: boolean };

export type ActivateFact = { ok: true; implements: string[] } | { ok: false; error: string };
export interface SocketFact {
  path: string;
  exists: boolean;
  activate?: ActivateFact;
}

export interface LinkFact {
  name: string;
  mtu: number;
  /** Global-scope addresses, CIDR. */
  addresses: string[];
  kind?: string;
  master?: string;
}

export interface BridgeFact {
  name: string;
  /** The NIC the operator named (--parent), if any. */
  requestedParent?: string;
  bridge?: LinkFact;
  /** Links enslaved to the bridge. */
  members: LinkFact[];
  /** The requested parent when it exists but is not in the bridge. */
  parentOutside?: LinkFact;
  error?: string;
}

export interface FirewallFact {
  /** False when iptables could not be read (not installed, not root): the check is skipped. */
  readable: boolean;
  error?: string;
  forwardPolicy?: string;
  /** bridge-nf-call-iptables = 1 (bridged frames go through iptables FORWARD). */
  brNetfilter: boolean;
  acceptRule: boolean;
}

export type DockerFact =
  | { installed: false }
  | { installed: true; error: string }
  | { installed: true; networkPlugins: string[]; ipamPlugins?: string[]; flatnetNetworks: number };

export interface DoctorFacts {
  etcd: EtcdFact;
  socket: SocketFact;
  bridge: BridgeFact;
  firewall: FirewallFact;
  docker: DockerFact;
  /** Plugin name Docker knows flatnet by (flatnet, or e.g. flatnet:latest when managed). */
  driver: string;
}

export interface CheckResult {
  name: string;
  status: 'pass' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

const pass = (name: string, detail: string): CheckResult => ({ name, status: 'pass', detail });
const fail = (name: string, detail: string, fix: string): CheckResult => ({ name, status: 'fail', detail, fix });
const skip = (name: string, detail: string): CheckResult => ({ name, status: 'skip', detail });

export function checkEtcd(f: EtcdFact): CheckResult {
  const at = f.endpoints.join(',');
  if (f.ok) return pass('etcd', `reachable at ${at}${f.auth ? ', authentication OK' : ''}`);
  if (f.authRefused) {
    return fail(
      'etcd',
      `etcd at ${at} refused the credentials: ${f.reason}`,
      "check FLATNET_ETCD_USERNAME / FLATNET_ETCD_PASSWORD in /etc/flatnet/flatnet.conf and the user's role on the prefix",
    );
  }
  return fail(
    'etcd',
    `cannot reach etcd at ${at}: ${f.reason}`,
    'start etcd, or set FLATNET_ETCD_ENDPOINTS (and the TLS files) in /etc/flatnet/flatnet.conf to match it',
  );
}

export function checkSocket(f: SocketFact): CheckResult {
  const name = 'plugin socket';
  if (!f.exists)
    return fail(name, `${f.path} does not exist`, 'start the server: systemctl start flatnet (or flatnet server)');
  if (f.activate === undefined || !f.activate.ok) {
    const why = f.activate && !f.activate.ok ? f.activate.error : 'no answer';
    return fail(
      name,
      `${f.path} exists but Plugin.Activate failed (${why})`,
      'the server is not answering (stale socket?): systemctl restart flatnet',
    );
  }
  const missingIfaces = ['IpamDriver', 'NetworkDriver'].filter(
    (i) => !(f.activate as { implements: string[] }).implements.includes(i),
  );
  if (missingIfaces.length) {
    return fail(
      name,
      `${f.path} answers but does not implement ${missingIfaces.join(', ')}`,
      "another program owns this socket: stop it, or point --socket at flatnet's",
    );
  }
  return pass(name, `${f.path} answers Plugin.Activate (IpamDriver, NetworkDriver)`);
}

/** The NIC the bridge carries, by hostnet's rule (bridgeNic). */
export function bridgeParent(f: BridgeFact): LinkFact | undefined {
  const nic = bridgeNic(
    f.members.map((m) => m.name),
    f.requestedParent,
  );
  return f.members.find((m) => m.name === nic);
}

export function checkBridge(f: BridgeFact): CheckResult {
  const name = 'bridge';
  if (f.error) return skip(name, `cannot read links: ${f.error}`);
  if (f.bridge === undefined) {
    return fail(
      name,
      `${f.name} does not exist`,
      `create the network with \`flatnet create-network --name lan --parent <nic>\` (the driver builds ${f.name} when Docker creates the network)`,
    );
  }
  const parent = bridgeParent(f);
  if (parent === undefined) {
    if (f.parentOutside) {
      return fail(
        name,
        `${f.requestedParent} is not in ${f.name} (its addresses: ${f.parentOutside.addresses.join(',') || 'none'})`,
        `recreate the network so the driver moves ${f.requestedParent} into ${f.name}, or \`flatnet bridge restore --bridge ${f.name} --parent ${f.requestedParent}\` to undo`,
      );
    }
    const what = f.requestedParent
      ? `${f.requestedParent} is not a member of ${f.name}`
      : `${f.name} holds no NIC (or several)`;
    return fail(
      name,
      what,
      `name the NIC with --parent; if ${f.name} lost it, recreate the network or run \`flatnet bridge restore --bridge ${f.name} --parent <nic>\``,
    );
  }
  if (parent.addresses.length > 0) {
    return fail(
      name,
      `${parent.name} still holds ${parent.addresses.join(',')} while in ${f.name}`,
      `move the address to ${f.name}: ip addr del ${parent.addresses[0]} dev ${parent.name} && ip addr add ${parent.addresses[0]} dev ${f.name}`,
    );
  }
  if (f.bridge.addresses.length === 0) {
    return fail(
      name,
      `${f.name} holds ${parent.name} but has no address (the host is off the LAN)`,
      `run \`flatnet bridge restore --bridge ${f.name} --parent ${parent.name}\` to give the NIC its address back, then recreate the network`,
    );
  }
  return pass(name, `${f.name} holds ${parent.name} and its address ${f.bridge.addresses.join(',')}`);
}

export function checkMtu(f: BridgeFact): CheckResult {
  const name = 'mtu';
  if (f.error || f.bridge === undefined) return skip(name, `no ${f.name} to check`);
  const parent = bridgeParent(f);
  const veths = f.members.filter((m) => isFlatnetVeth(m.name));
  const links = [f.bridge, ...(parent ? [parent] : []), ...veths];
  const expected = parent?.mtu ?? f.bridge.mtu;
  const off = links.filter((l) => l.mtu !== expected);
  if (off.length === 0)
    return pass(
      name,
      `${links.length} link(s) at MTU ${expected} (${f.name}${parent ? `, ${parent.name}` : ''}, ${veths.length} veth(s))`,
    );
  return fail(
    name,
    `MTU ${expected} expected, but ${off.map((l) => `${l.name}=${l.mtu}`).join(', ')}`,
    // ports first: a bridge's MTU cannot exceed its smallest port's
    [...off.filter((l) => l !== f.bridge), ...off.filter((l) => l === f.bridge)]
      .map((l) => `ip link set dev ${l.name} mtu ${expected}`)
      .join(' && '),
  );
}

export function checkFirewall(f: FirewallFact, bridge: string): CheckResult {
  const name = 'forwarding';
  if (!f.readable) return skip(name, `cannot read iptables (${f.error ?? 'unknown reason'}); run doctor as root`);
  const rule = `iptables -I FORWARD -i ${bridge} -o ${bridge} -m comment --comment flatnet -j ACCEPT`;
  if (f.acceptRule) return pass(name, `FORWARD accepts ${bridge}-to-${bridge} (flatnet rule present)`);
  if (!f.brNetfilter) return pass(name, 'bridged frames bypass iptables (br_netfilter off)');
  if (f.forwardPolicy === 'ACCEPT') return pass(name, 'FORWARD policy ACCEPT (bridged frames pass iptables)');
  return fail(
    name,
    `FORWARD policy ${f.forwardPolicy ?? 'unknown'} with br_netfilter on and no flatnet rule: containers on other hosts are unreachable`,
    `restart the server (it adds the rule) or run: ${rule}`,
  );
}

export function pluginNameMatches(name: string, driver: string): boolean {
  return name === driver || name.split(':')[0] === driver || name === `${driver}:latest`;
}

export function checkDocker(f: DockerFact, driver: string): CheckResult {
  const name = 'docker';
  if (!f.installed) return skip(name, 'docker is not installed here; nothing to check');
  if ('error' in f)
    return fail(name, `cannot ask dockerd: ${f.error}`, 'start Docker (systemctl start docker) or set --docker-host');
  const inNetwork = f.networkPlugins.some((p) => pluginNameMatches(p, driver));
  const inIpam = f.ipamPlugins === undefined || f.ipamPlugins.some((p) => pluginNameMatches(p, driver));
  if (inNetwork && inIpam)
    return pass(name, `dockerd lists ${driver} as a network${f.ipamPlugins ? ' and IPAM' : ''} plugin`);
  if (f.flatnetNetworks > 0) return pass(name, `dockerd has ${f.flatnetNetworks} network(s) with driver ${driver}`);
  return fail(
    name,
    `dockerd has not loaded ${driver} (Docker activates a plugin at first use)`,
    'create the network: flatnet create-network --name lan (start flatnet before docker: the unit has Before=docker.service)',
  );
}

export function runChecks(f: DoctorFacts): CheckResult[] {
  return [
    checkEtcd(f.etcd),
    checkSocket(f.socket),
    checkBridge(f.bridge),
    checkMtu(f.bridge),
    checkFirewall(f.firewall, f.bridge.name),
    checkDocker(f.docker, f.driver),
  ];
}

export function formatCheck(r: CheckResult): string {
  const tag = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' }[r.status];
  return `${tag}  ${r.name}: ${r.detail}${r.fix ? ` -- fix: ${r.fix}` : ''}`;
}

/** `iptables -S FORWARD` output: the policy and whether flatnet's bridge ACCEPT rule is there. */
export function parseForwardChain(text: string, bridge: string): { policy?: string; acceptRule: boolean } {
  let policy: string | undefined;
  let acceptRule = false;
  for (const line of text.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === '-P' && words[1] === 'FORWARD') policy = words[2];
    if (words[0] !== '-A' && words[0] !== '-I') continue;
    const has = (flag: string, value: string): boolean =>
      words.some((w, i) => w === flag && words[i + 1]?.replace(/"/g, '') === value);
    if (has('-i', bridge) && has('-o', bridge) && has('--comment', 'flatnet') && has('-j', 'ACCEPT')) acceptRule = true;
  }
  return { ...(policy !== undefined ? { policy } : {}), acceptRule };
}
