import { FlatnetError } from '../errors.js';
import type { NicFacts } from '../hostnet/nic-facts.js';
import type { PoolSummary } from '../ipam/contract.js';
import { formatSubnet, parseAddress, parseSubnet, subnetContains, tryParseCidr } from '../net/address.js';

/** The pool a host's own NIC sits in, and the gateway its default route names there. */
export interface NicChoice {
  pool: PoolSummary;
  /** The host's default gateway through the NIC, when it lies inside the pool's subnet. */
  routeGateway?: string;
  /** The NIC (as asked or found) and its address inside the pool, for the CLI's output. */
  nic: string;
  address: string;
}

/**
 * `flatnet create-network` without --subnet: the network is the segment the NIC is on, so its pool is the one
 * whose subnet holds the NIC's address. One pool must match; anything else is refused with what to give.
 */
export function poolFromNic(facts: NicFacts, pools: PoolSummary[]): NicChoice {
  if (pools.length === 0) {
    throw new FlatnetError(
      'invalid',
      'no flatnet pool exists yet; add a range first with `flatnet ip-range add --ip-start A/len --ip-end B/len`',
    );
  }
  if (!facts.found) {
    throw new FlatnetError(
      'invalid',
      facts.parent !== undefined
        ? `no NIC ${facts.parent} on this host; give the LAN NIC with --parent, or the pool with --subnet`
        : 'no default route names a NIC, so the subnet cannot be taken from it; give --parent NIC or --subnet',
    );
  }
  const where = facts.holder === facts.nic ? facts.nic : `${facts.nic} (addresses on ${facts.holder})`;
  if (facts.addresses.length === 0) {
    throw new FlatnetError(
      'invalid',
      `${where} has no global address to take the subnet from; give --subnet (pools: ${pools.map((p) => p.subnet).join(', ')})`,
    );
  }
  const matches = new Map<string, { pool: PoolSummary; address: string }>();
  for (const address of facts.addresses) {
    const cidr = tryParseCidr(address);
    if (cidr === undefined) continue;
    const pool = pools.find((p) => {
      const s = parseSubnet(p.subnet);
      return s.prefix === cidr.prefix && subnetContains(s, cidr.family, cidr.value);
    });
    if (pool !== undefined && !matches.has(pool.subnet)) matches.set(pool.subnet, { pool, address });
  }
  const found = [...matches.values()];
  const [only, ...more] = found;
  if (only === undefined) {
    const subnets = [
      ...new Set(facts.addresses.flatMap((a) => (tryParseCidr(a) ? [formatSubnet(parseSubnet(a))] : []))),
    ];
    throw new FlatnetError(
      'invalid',
      `no flatnet pool is ${where}'s subnet ${subnets.join(', ')} (pools: ${pools.map((p) => p.subnet).join(', ')}); add this segment's range with \`flatnet ip-range add\`, or give --subnet`,
    );
  }
  if (more.length > 0) {
    throw new FlatnetError(
      'invalid',
      `${where} has addresses in several flatnet pools (${found.map((m) => `${m.address} in ${m.pool.subnet}`).join(', ')}); choose one with --subnet`,
    );
  }
  const subnet = parseSubnet(only.pool.subnet);
  const routeGateway = facts.gateways.find((g) => {
    const a = parseAddress(g);
    return subnetContains(subnet, a.family, a.value);
  });
  return {
    pool: only.pool,
    ...(routeGateway !== undefined ? { routeGateway } : {}),
    nic: facts.nic,
    address: only.address,
  };
}

/**
 * The gateway when --gateway is not given: the pool's (set with `host-range add --gateway`) or the host's
 * default route through the NIC; both given and different is a misconfiguration, refused.
 */
export function gatewayFromNic(choice: NicChoice): string | undefined {
  const { pool, routeGateway } = choice;
  if (
    pool.gateway !== undefined &&
    routeGateway !== undefined &&
    parseAddress(pool.gateway).value !== parseAddress(routeGateway).value
  ) {
    throw new FlatnetError(
      'invalid',
      `pool ${pool.subnet} names gateway ${pool.gateway} but ${choice.nic}'s default route goes via ${routeGateway}; give --gateway`,
    );
  }
  return pool.gateway ?? routeGateway;
}
