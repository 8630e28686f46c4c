import { FlatnetError } from '../errors.js';
import type { PoolSummary } from '../ipam/contract.js';

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
  /** argv for `docker` (never a shell string). */
  createArgs: string[];
  /** argv prefix selecting the daemon (-H ...), for the inspect call too. */
  hostArgs: string[];
}

const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Decides the `docker network create` call from the request and the stored pools; refuses what cannot work. */
export function planNetwork(req: CreateNetworkRequest, pools: PoolSummary[]): NetworkPlan {
  if (!NETWORK_NAME.test(req.name)) throw new FlatnetError('invalid', `"${req.name}" is not a valid Docker network name`);
  for (const [flag, value] of [['--parent', req.parent], ['--bridge', req.bridge]] as const) {
    if (value !== undefined && !IFNAME.test(value)) {
      throw new FlatnetError('invalid', `${flag} "${value}" is not an interface name (1-15 of [A-Za-z0-9_.-])`);
    }
  }
  if (req.mtu !== undefined) {
    const mtu = Number(req.mtu);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new FlatnetError('invalid', `--mtu ${req.mtu} is not an MTU (68-65535)`);
  }
  if (req.dockerHost !== undefined && !/^(unix|tcp|ssh|npipe|fd):\/\//.test(req.dockerHost)) {
    throw new FlatnetError('invalid', `--docker-host "${req.dockerHost}" is not a Docker host URL such as unix:///var/run/docker.sock`);
  }
  let pool: PoolSummary | undefined;
  if (req.subnet !== undefined) {
    pool = pools.find((p) => p.subnet === req.subnet);
    if (pool === undefined) {
      const known = pools.map((p) => p.subnet).join(', ') || 'none';
      throw new FlatnetError('invalid', `no flatnet pool ${req.subnet} (pools: ${known}); add one with \`flatnet ip-range add\``);
    }
  } else if (pools.length === 1) {
    pool = pools[0];
  } else if (pools.length === 0) {
    throw new FlatnetError('invalid', 'no flatnet pool exists yet; add a range first with `flatnet ip-range add --ip-start A/len --ip-end B/len`');
  } else {
    throw new FlatnetError('invalid', `several pools exist (${pools.map((p) => p.subnet).join(', ')}); choose one with --subnet`);
  }
  const subnet = (pool as PoolSummary).subnet;
  const gateway = req.gateway ?? pool?.gateway;
  const hostArgs = req.dockerHost !== undefined ? ['-H', req.dockerHost] : [];
  const createArgs = [...hostArgs, 'network', 'create', '-d', req.driver, '--ipam-driver', req.driver, '--subnet', subnet];
  if (gateway !== undefined) createArgs.push('--gateway', gateway);
  if (req.ipRange !== undefined) createArgs.push('--ip-range', req.ipRange);
  if (req.parent !== undefined) createArgs.push('-o', `parent=${req.parent}`);
  if (req.bridge !== undefined) createArgs.push('-o', `bridge=${req.bridge}`);
  if (req.mtu !== undefined) createArgs.push('-o', `mtu=${req.mtu}`);
  createArgs.push(req.name);
  return { subnet, ...(gateway !== undefined ? { gateway } : {}), createArgs, hostArgs };
}

export interface ExistingNetwork {
  driver: string;
  subnets: string[];
}

/** 'same' = nothing to do; 'different' = a network of that name exists but is not what was asked. */
export function compareExisting(existing: ExistingNetwork, driver: string, subnet: string): 'same' | 'different' {
  return existing.driver === driver && existing.subnets.includes(subnet) ? 'same' : 'different';
}
