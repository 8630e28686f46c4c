import { FlatnetError } from '../../errors.js';
import { formatSubnet, parseSubnet, type Subnet } from '../../net/address.js';

/**
 * PoolIDs are derived from the request so that every host and every restart names a pool the same way:
 * "<subnet>" or "<subnet>|<subPool>" in canonical CIDR form.
 */
export interface PoolRef {
  subnet: Subnet;
  subPool?: Subnet;
}

export function formatPoolId(subnet: Subnet, subPool?: Subnet): string {
  return subPool ? `${formatSubnet(subnet)}|${formatSubnet(subPool)}` : formatSubnet(subnet);
}

function canonical(text: string, what: string, poolId: string): Subnet {
  let s: Subnet;
  try {
    s = parseSubnet(text);
  } catch {
    throw new FlatnetError('invalid', `PoolID "${poolId}" is not one flatnet issued (bad ${what}).`);
  }
  if (formatSubnet(s) !== text)
    throw new FlatnetError('invalid', `PoolID "${poolId}" is not one flatnet issued (non-canonical ${what}).`);
  return s;
}

export function parsePoolId(poolId: string): PoolRef {
  const parts = poolId.split('|');
  if (parts.length > 2 || poolId.length > 100) {
    throw new FlatnetError('invalid', `PoolID "${poolId.slice(0, 100)}" is not one flatnet issued.`);
  }
  const subnet = canonical(parts[0] as string, 'subnet', poolId);
  if (parts.length === 1) return { subnet };
  const subPool = canonical(parts[1] as string, 'sub-pool', poolId);
  if (
    subPool.family !== subnet.family ||
    subPool.prefix < subnet.prefix ||
    subPool.network < subnet.network ||
    subPool.network + subPool.size > subnet.network + subnet.size
  ) {
    throw new FlatnetError('invalid', `PoolID "${poolId}" has a sub-pool outside its subnet.`);
  }
  return { subnet, subPool };
}
