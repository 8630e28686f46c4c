import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { z } from 'zod';
import type { Settings } from '../../config/settings.js';
import { errorMessage, FlatnetError } from '../../errors.js';
import { EtcdStores } from '../../store/etcd-stores.js';
import { silentLogger } from '../../observability/logger.js';
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

const run = promisify(execFile);
const PROBE_TIMEOUT_MS = 3000;

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
    const reason = shortEtcdReason(err).split(s.etcdPassword ?? '\u0000').join('<redacted>');
    return { ok: false, endpoints: s.etcdEndpoints, reason, authRefused };
  } finally {
    stores.close();
  }
}

const activateSchema = z.object({ Implements: z.array(z.string()) });

function activate(socketPath: string): Promise<ActivateFact> {
  return new Promise((resolve) => {
    const req = request({ socketPath, method: 'POST', path: '/Plugin.Activate', timeout: PROBE_TIMEOUT_MS, headers: { Accept: 'application/vnd.docker.plugins.v1.2+json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve({ ok: false, error: `HTTP ${res.statusCode}` });
        try {
          resolve({ ok: true, implements: activateSchema.parse(JSON.parse(body)).Implements });
        } catch {
          resolve({ ok: false, error: 'the reply is not an Activate answer' });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve({ ok: false, error: err.message }));
    req.end();
  });
}

async function gatherSocket(path: string): Promise<SocketFact> {
  try {
    if (!(await stat(path)).isSocket()) return { path, exists: true, activate: { ok: false, error: 'not a socket' } };
  } catch {
    return { path, exists: false };
  }
  return { path, exists: true, activate: await activate(path) };
}

const ipLinkSchema = z.array(
  z.object({
    ifname: z.string(),
    mtu: z.number(),
    master: z.string().optional(),
    linkinfo: z.object({ info_kind: z.string().optional() }).optional(),
    addr_info: z.array(z.object({ family: z.string(), local: z.string(), prefixlen: z.number(), scope: z.string().optional() })).optional(),
  }),
);

export async function gatherBridge(name: string, parent: string | undefined): Promise<BridgeFact> {
  let links: LinkFact[];
  try {
    const { stdout } = await run('ip', ['-j', '-d', 'addr', 'show']);
    links = ipLinkSchema.parse(JSON.parse(stdout)).map((l) => ({
      name: l.ifname,
      mtu: l.mtu,
      addresses: (l.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`),
      ...(l.linkinfo?.info_kind ? { kind: l.linkinfo.info_kind } : {}),
      ...(l.master ? { master: l.master } : {}),
    }));
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
  try {
    const { stdout } = await run('iptables', ['-w', '5', '-S', 'FORWARD']);
    const chain = parseForwardChain(stdout, bridge);
    return { readable: true, brNetfilter, acceptRule: chain.acceptRule, ...(chain.policy ? { forwardPolicy: chain.policy } : {}) };
  } catch (err) {
    return { readable: false, brNetfilter, acceptRule: false, error: errorMessage(err).split('\n')[0] ?? 'iptables failed' };
  }
}

const pluginsSchema = z.object({ Network: z.array(z.string()).nullable().optional(), IPAM: z.array(z.string()).nullable().optional() });

async function gatherDocker(driver: string, dockerHost: string | undefined): Promise<DockerFact> {
  const host = dockerHost ? ['-H', dockerHost] : [];
  try {
    const info = await run('docker', [...host, 'info', '--format', '{{json .Plugins}}'], { timeout: 20_000 });
    const plugins = pluginsSchema.parse(JSON.parse(info.stdout));
    const nets = await run('docker', [...host, 'network', 'ls', '--filter', `driver=${driver}`, '-q'], { timeout: 20_000 });
    return {
      installed: true,
      networkPlugins: plugins.Network ?? [],
      ...(plugins.IPAM ? { ipamPlugins: plugins.IPAM } : {}),
      flatnetNetworks: nets.stdout.split('\n').filter((l) => l.trim() !== '').length,
    };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return { installed: false };
    return { installed: true, error: (e.stderr || e.message).trim().split('\n')[0] ?? 'docker failed' };
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
