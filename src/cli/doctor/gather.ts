import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import type { Settings } from '../../config/settings.js';
import { errorMessage, FlatnetError } from '../../errors.js';
import { execArgs, failureLine } from '../../hostnet/exec.js';
import { listLinksWithAddrs, type LinkWithAddrs } from '../../hostnet/ip-json.js';
import { IpRunner } from '../../hostnet/ip-runner.js';
import { silentLogger } from '../../observability/logger.js';
import { EtcdStores } from '../../store/etcd-stores.js';
import { shortEtcdReason } from '../errors.js';
import {
  parseForwardChain,
  type ActivateFact,
  type BridgeFact,
  type DockerFact,
  type DoctorFacts,
  type EtcdFact,
  type FirewallFact,
  type LinkFact,
  type SocketFact,
} from './checks.js';
import { postPlugin } from '../../util/plugin-client.js';

const PROBE_TIMEOUT_MS = 3000;
const DOCKER_TIMEOUT_MS = 20_000;

export interface GatherOptions {
  settings: Settings;
  bridge: string;
  parent?: string;
  driver: string;
  dockerHost?: string;
}

async function gatherEtcd(s: Settings): Promise<EtcdFact> {
  const stores = EtcdStores.open(s, silentLogger());
  try {
    await stores.probe();
    return { ok: true, endpoints: s.etcdEndpoints, auth: s.etcdUsername !== undefined };
  } catch (caught) {
    // the store wraps etcd3's error; its class says best whether the credentials were refused
    const err = caught instanceof FlatnetError && caught.cause instanceof Error ? caught.cause : caught;
    const authRefused = /Auth|Permission|Unauthenticated/.test((err as Error).constructor.name);
    const reason = shortEtcdReason(err)
      .split(s.etcdPassword ?? '\u0000')
      .join('<redacted>');
    return { ok: false, endpoints: s.etcdEndpoints, reason, authRefused };
  } finally {
    stores.close();
  }
}

const activateSchema = z.object({ Implements: z.array(z.string()) });

async function activate(socketPath: string): Promise<ActivateFact> {
  let reply;
  try {
    reply = await postPlugin(socketPath, 'Plugin.Activate', '', { timeoutMs: PROBE_TIMEOUT_MS });
  } catch (err) {
    return { ok: false, error: errorMessage(err) };
  }
  if (reply.status !== 200) return { ok: false, error: `HTTP ${reply.status}` };
  try {
    return { ok: true, implements: activateSchema.parse(JSON.parse(reply.text)).Implements };
  } catch {
    return { ok: false, error: 'the reply is not an Activate answer' };
  }
}

async function gatherSocket(path: string): Promise<SocketFact> {
  try {
    if (!(await stat(path)).isSocket()) return { path, exists: true, activate: { ok: false, error: 'not a socket' } };
  } catch {
    return { path, exists: false };
  }
  return { path, exists: true, activate: await activate(path) };
}

function linkFact(l: LinkWithAddrs): LinkFact {
  return {
    name: l.ifname,
    mtu: l.mtu,
    addresses: l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
    ...(l.linkinfo?.info_kind ? { kind: l.linkinfo.info_kind } : {}),
    ...(l.master ? { master: l.master } : {}),
  };
}

export async function gatherBridge(
  name: string,
  parent: string | undefined,
  ip: IpRunner = new IpRunner(),
): Promise<BridgeFact> {
  let links: LinkFact[];
  try {
    links = (await listLinksWithAddrs(ip)).map(linkFact);
  } catch (err) {
    return { name, members: [], error: errorMessage(err).split('\n')[0] ?? 'ip failed' };
  }
  const bridge = links.find((l) => l.name === name);
  const members = links.filter((l) => l.master === name);
  const outside = parent !== undefined ? links.find((l) => l.name === parent && l.master !== name) : undefined;
  return {
    name,
    members,
    ...(parent !== undefined ? { requestedParent: parent } : {}),
    ...(bridge ? { bridge } : {}),
    ...(outside ? { parentOutside: outside } : {}),
  };
}

async function gatherFirewall(bridge: string): Promise<FirewallFact> {
  let brNetfilter = false;
  try {
    brNetfilter = (await readFile('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8')).trim() === '1';
  } catch {
    // no file: br_netfilter is not loaded, so bridged frames never meet iptables
  }
  let error: string;
  try {
    const res = await execArgs('iptables', ['-w', '5', '-S', 'FORWARD']);
    if (res.code === 0) {
      const chain = parseForwardChain(res.stdout, bridge);
      return {
        readable: true,
        brNetfilter,
        acceptRule: chain.acceptRule,
        ...(chain.policy ? { forwardPolicy: chain.policy } : {}),
      };
    }
    error = failureLine(res);
  } catch (err) {
    error = errorMessage(err).split('\n')[0] ?? 'iptables failed';
  }
  return { readable: false, brNetfilter, acceptRule: false, error };
}

const pluginsSchema = z.object({
  Network: z.array(z.string()).nullable().optional(),
  IPAM: z.array(z.string()).nullable().optional(),
});

/** `docker ARGS` to completion; its stdout, else a one-line reason (ENOENT passes through: docker is not installed). */
async function docker(args: string[]): Promise<string> {
  const res = await execArgs('docker', args, { timeoutMs: DOCKER_TIMEOUT_MS });
  if (res.code !== 0) throw new Error(failureLine(res));
  return res.stdout;
}

async function gatherDocker(driver: string, dockerHost: string | undefined): Promise<DockerFact> {
  const host = dockerHost ? ['-H', dockerHost] : [];
  try {
    const plugins = pluginsSchema.parse(JSON.parse(await docker([...host, 'info', '--format', '{{json .Plugins}}'])));
    const nets = await docker([...host, 'network', 'ls', '--filter', `driver=${driver}`, '-q']);
    return {
      installed: true,
      networkPlugins: plugins.Network ?? [],
      ...(plugins.IPAM ? { ipamPlugins: plugins.IPAM } : {}),
      flatnetNetworks: nets.split('\n').filter((l) => l.trim() !== '').length,
    };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { installed: false };
    return { installed: true, error: errorMessage(err).trim().split('\n')[0] ?? 'docker failed' };
  }
}

/** Reads everything doctor judges; never changes anything. */
export async function gatherFacts(o: GatherOptions): Promise<DoctorFacts> {
  const [etcd, socket, bridge, firewall, docker] = await Promise.all([
    gatherEtcd(o.settings),
    gatherSocket(o.settings.socket),
    gatherBridge(o.bridge, o.parent),
    gatherFirewall(o.bridge),
    gatherDocker(o.driver, o.dockerHost),
  ]);
  return { etcd, socket, bridge, firewall, docker, driver: o.driver };
}
