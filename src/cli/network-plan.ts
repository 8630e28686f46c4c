import { FlatnetError, errorMessage } from '../errors.js';
import type { PoolSummary } from '../ipam/contract.js';
import { formatSubnet, parseAddress, parseSubnet, subnetContains, type Subnet } from '../net/address.js';
import { CLI_FLAG_NAMING, parseNetworkOptions } from '../netdriver/options.js';
import type { NicFacts } from '../hostnet/nic-facts.js';
import { gatewayFromNic, poolFromNic } from './nic-subnet.js';

export interface CreateNetworkRequest {
  name: string;
  /** Used for both -d and --ipam-driver (a managed plugin is named e.g. flatnet:latest). */
  driver: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  parent?: string;
  bridge?: string;
  mtu?: string;
  dockerHost?: string;
}

export interface NetworkPlan {
  subnet: string;
  gateway?: string;
  /** Without --subnet: the NIC address the subnet was taken from ("eth0's 10.98.0.11/16"). */
  from?: string;
  /** argv for `docker` (never a shell string). */
  createArgs: string[];
  /** argv prefix selecting the daemon (-H ...), for the inspect call too. */
  hostArgs: string[];
}

/** A request whose values passed every check that needs no pool: the -o values as the driver will read them. */
export interface CheckedRequest {
  req: CreateNetworkRequest;
  /** `-o k=v` values for docker, exactly as the driver's parseNetworkOptions accepted them. */
  driverOptions: { key: 'parent' | 'bridge' | 'mtu'; value: string }[];
  subnet?: Subnet;
  gateway?: { family: 4 | 6; value: bigint };
  ipRange?: Subnet;
}

// What dockerd accepts as a network name; it also refuses the names of its predefined networks.
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const PREDEFINED = new Set(['bridge', 'host', 'none', 'default']);

/**
 * Every check that needs neither etcd nor Docker, so that a bad flag is refused before anything is read or
 * run. The -o values go through the network driver's own parser: what passes here, the driver accepts.
 */
export function checkRequest(req: CreateNetworkRequest): CheckedRequest {
  if (!NETWORK_NAME.test(req.name)) {
    throw new FlatnetError(
      'invalid',
      `"${req.name}" is not a valid Docker network name (letters, digits, '_', '.', '-'; a letter or digit first)`,
    );
  }
  if (PREDEFINED.has(req.name))
    throw new FlatnetError(
      'invalid',
      `"${req.name}" is the name of a network Docker predefines; choose another --name`,
    );
  if (req.dockerHost !== undefined && !/^(unix|tcp|ssh|npipe|fd):\/\//.test(req.dockerHost)) {
    throw new FlatnetError(
      'invalid',
      `--docker-host "${req.dockerHost}" is not a Docker host URL such as unix:///var/run/docker.sock`,
    );
  }
  const given = { parent: req.parent, bridge: req.bridge, mtu: req.mtu };
  const generic = Object.fromEntries(Object.entries(given).filter((e): e is [string, string] => e[1] !== undefined));
  const parsed = parseNetworkOptions(generic, CLI_FLAG_NAMING);
  const driverOptions: CheckedRequest['driverOptions'] = [];
  if (req.parent !== undefined && parsed.parent !== undefined)
    driverOptions.push({ key: 'parent', value: parsed.parent });
  if (req.bridge !== undefined) driverOptions.push({ key: 'bridge', value: parsed.bridge });
  if (parsed.mtu !== undefined) driverOptions.push({ key: 'mtu', value: String(parsed.mtu) });
  const flagged = <T>(flag: string, parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      throw new FlatnetError('invalid', `${flag}: ${errorMessage(err)}`);
    }
  };
  return {
    req,
    driverOptions,
    ...(req.subnet !== undefined ? { subnet: flagged('--subnet', () => parseSubnet(req.subnet as string)) } : {}),
    ...(req.gateway !== undefined ? { gateway: flagged('--gateway', () => parseAddress(req.gateway as string)) } : {}),
    ...(req.ipRange !== undefined ? { ipRange: flagged('--ip-range', () => parseSubnet(req.ipRange as string)) } : {}),
  };
}

/** With --subnet, that pool and its gateway; without, the pool of the host's own NIC (see nic-subnet.ts). */
function choosePool(
  checked: CheckedRequest,
  pools: PoolSummary[],
  nic: NicFacts | undefined,
): { pool: PoolSummary; gateway?: string; from?: string } {
  if (checked.subnet !== undefined) {
    const wanted = formatSubnet(checked.subnet);
    const pool = pools.find((p) => p.subnet === wanted);
    if (pool === undefined) {
      const known = pools.map((p) => p.subnet).join(', ') || 'none';
      throw new FlatnetError(
        'invalid',
        `no flatnet pool ${wanted} (pools: ${known}); add one with \`flatnet ip-range add\``,
      );
    }
    return { pool, ...(pool.gateway !== undefined ? { gateway: pool.gateway } : {}) };
  }
  if (nic === undefined) throw new Error('planNetwork: without --subnet the NIC facts are needed');
  const choice = poolFromNic(nic, pools);
  // An explicit --gateway needs no agreement between the pool and the host's route.
  const gateway = checked.req.gateway !== undefined ? undefined : gatewayFromNic(choice);
  return {
    pool: choice.pool,
    ...(gateway !== undefined ? { gateway } : {}),
    from: `${choice.nic}'s ${choice.address}`,
  };
}

/**
 * Decides the `docker network create` call from the checked request, the stored pools and (without --subnet)
 * the facts of the host's NIC; refuses what cannot work.
 */
export function planNetwork(checked: CheckedRequest, pools: PoolSummary[], nic?: NicFacts): NetworkPlan {
  const { req } = checked;
  const chosen = choosePool(checked, pools, nic);
  const { pool } = chosen;
  const subnet = parseSubnet(pool.subnet);
  if (checked.gateway !== undefined && !subnetContains(subnet, checked.gateway.family, checked.gateway.value)) {
    throw new FlatnetError('invalid', `--gateway ${req.gateway} is not inside the subnet ${pool.subnet}`);
  }
  const range = checked.ipRange;
  if (range !== undefined && !(range.prefix >= subnet.prefix && subnetContains(subnet, range.family, range.network))) {
    throw new FlatnetError('invalid', `--ip-range ${req.ipRange} does not lie inside the subnet ${pool.subnet}`);
  }
  const gateway = req.gateway ?? chosen.gateway;
  const hostArgs = req.dockerHost !== undefined ? ['-H', req.dockerHost] : [];
  const createArgs = [
    ...hostArgs,
    'network',
    'create',
    '-d',
    req.driver,
    '--ipam-driver',
    req.driver,
    '--subnet',
    pool.subnet,
  ];
  if (gateway !== undefined) createArgs.push('--gateway', gateway);
  if (range !== undefined) createArgs.push('--ip-range', formatSubnet(range));
  for (const o of checked.driverOptions) createArgs.push('-o', `${o.key}=${o.value}`);
  createArgs.push(req.name);
  return {
    subnet: pool.subnet,
    ...(gateway !== undefined ? { gateway } : {}),
    ...(chosen.from !== undefined ? { from: chosen.from } : {}),
    createArgs,
    hostArgs,
  };
}

export interface ExistingNetwork {
  driver: string;
  subnets: string[];
}

/** 'same' = nothing to do; 'different' = a network of that name exists but is not what was asked. */
export function compareExisting(existing: ExistingNetwork, driver: string, subnet: string): 'same' | 'different' {
  return existing.driver === driver && existing.subnets.includes(subnet) ? 'same' : 'different';
}
