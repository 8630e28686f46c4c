import { z } from 'zod';
import type { Lab, LabHost } from '../../src/lab/lab.js';

const getResponse = z.object({
  kvs: z.array(z.object({ key: z.string(), value: z.string().optional() })).optional(),
});

const POOLS = '/flatnet/ipam/v1/pool/';

/** Every key/value under a prefix, read with etcdctl from the LAN namespace (not through flatnet's code). */
export async function etcdGetPrefix(lab: Lab, prefix: string): Promise<Map<string, string>> {
  const out = await lab.etcdctl(['get', '--prefix', prefix, '-w', 'json']);
  const parsed = getResponse.parse(JSON.parse(out));
  const map = new Map<string, string>();
  for (const kv of parsed.kvs ?? []) {
    map.set(Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value ?? '', 'base64').toString());
  }
  return map;
}

const assignmentRecord = z.object({ hostId: z.string() }).passthrough();

/**
 * Addresses recorded as assigned in etcd (…/pool/<S>/addr/<ip>), with the host that holds each; with `subnet`,
 * only those recorded under that pool.
 */
export async function etcdAssignments(lab: Lab, subnet?: string): Promise<Map<string, string>> {
  const all = await etcdGetPrefix(lab, subnet === undefined ? POOLS : `${POOLS}${subnet.replace('/', '_')}/addr/`);
  const out = new Map<string, string>();
  for (const [key, value] of all) {
    const m = /\/addr\/([^/]+)$/.exec(key);
    if (m?.[1]) out.set(m[1], assignmentRecord.parse(JSON.parse(value)).hostId);
  }
  return out;
}

/** Addresses with a released record in etcd (…/pool/<S>/rel/<ip>): cooling, or parked for a name. */
export async function etcdReleased(lab: Lab): Promise<Set<string>> {
  const all = await etcdGetPrefix(lab, POOLS);
  return new Set([...all.keys()].flatMap((key) => /\/rel\/([^/]+)$/.exec(key)?.[1] ?? []));
}

const poolConfig = z
  .object({ claims: z.array(z.object({ hostId: z.string() }).passthrough()).optional() })
  .passthrough();
const claimKey = z.array(z.object({ hostId: z.string() }).passthrough());

/**
 * The hosts claiming a pool, one entry per claim (undefined when the pool's config is gone): the claim/<hostId>
 * keys, and claims still embedded in the config as older versions wrote them.
 */
export async function etcdPoolClaims(lab: Lab, subnet: string): Promise<string[] | undefined> {
  const pool = `${POOLS}${subnet.replace('/', '_')}/`;
  const all = await etcdGetPrefix(lab, pool);
  const config = all.get(`${pool}config`);
  if (config === undefined) return undefined;
  const claims = (poolConfig.parse(JSON.parse(config)).claims ?? []).map((c) => c.hostId);
  for (const [key, value] of all)
    if (key.startsWith(`${pool}claim/`)) claims.push(...claimKey.parse(JSON.parse(value)).map((c) => c.hostId));
  return claims;
}

const listedAssignment = z.object({ address: z.string(), subnet: z.string(), hostId: z.string() }).passthrough();

/** `flatnet ip list --json` as host `host` runs it. */
export async function flatnetIpList(host: LabHost): Promise<{ address: string; subnet: string; hostId: string }[]> {
  return z.array(listedAssignment).parse(JSON.parse(await host.flatnet(['ip', 'list', '--json'])));
}

/** The container's address on the given network, from docker inspect. */
export async function containerAddress(host: LabHost, container: string, network: string): Promise<string> {
  const out = await host.docker([
    'inspect',
    '--format',
    `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
    container,
  ]);
  return out.trim();
}

export async function containerMac(host: LabHost, container: string, network: string): Promise<string> {
  const out = await host.docker([
    'inspect',
    '--format',
    `{{(index .NetworkSettings.Networks "${network}").MacAddress}}`,
    container,
  ]);
  return out.trim();
}

/**
 * The index (in lab.etcdMembers' order) of the member that leads, from `etcdctl endpoint status`. Member ids are
 * 64-bit: compared as decimal text, never as JS numbers.
 */
export async function etcdLeaderIndex(lab: Lab): Promise<number> {
  const out = await lab.etcdctl(['endpoint', 'status', '-w', 'json']);
  for (const m of out.matchAll(/"Endpoint":"([^"]+)".*?"member_id":(\d+).*?"leader":(\d+)/g)) {
    if (m[2] === m[3]) {
      const i = lab.etcdMembers.findIndex((e) => e.clientUrl === m[1]);
      if (i >= 0) return i;
    }
  }
  throw new Error(`no etcd member reports itself as the leader:\n${out}`);
}

/** Addresses etcd records as held by one host. */
export async function etcdHeldBy(lab: Lab, hostId: string): Promise<string[]> {
  return [...(await etcdAssignments(lab))]
    .filter(([, h]) => h === hostId)
    .map(([a]) => a)
    .sort();
}
