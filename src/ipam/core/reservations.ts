import { FlatnetError } from '../../errors.js';
import { addressAt, offsetIn, type Subnet } from '../../net/address.js';
import type { PoolConfig } from '../model/records.js';

/**
 * Gateway and aux addresses are reservations, not container addresses: every host's Docker asks for the same
 * gateway, so a reservation is idempotent and reference-counted per host, and lives while any host holds it.
 */
export function reservationAddress(c: PoolConfig, subnet: Subnet, kind: 'gateway' | 'aux', wanted: string): string {
  if (wanted !== '') return addressAt(subnet, offsetIn(subnet, wanted));
  if (kind === 'aux') throw new FlatnetError('invalid', 'An auxiliary address request must name the address.');
  if (c.gateway) return c.gateway;
  if (subnet.size < 2n)
    throw new FlatnetError('invalid', `The subnet has no host address for a gateway; pass --gateway.`);
  return addressAt(subnet, 1n);
}

/**
 * `declared`: for aux, whether the operator declared the address as aux (see the reservation record's `tentative`).
 * An undeclared one is held by its first host only, so that two hosts' `--ip` containers, each taken for an aux
 * address right after `network create`, never share it.
 */
export function reserve(
  c: PoolConfig,
  hostId: string,
  kind: 'gateway' | 'aux',
  address: string,
  declared = true,
): PoolConfig {
  const reservations = c.reservations.map((r) => ({ ...r, holders: { ...r.holders } }));
  const existing = reservations.find((r) => r.address === address);
  if (existing) {
    // An aux address is one per network, and a host has one network per pool: a second request from the same
    // host is a container --ip that arrived inside the aux window, and must not share the address.
    if (kind === 'aux' && existing.holders[hostId] !== undefined) {
      throw new FlatnetError('conflict', `${address} is already reserved on this host.`);
    }
    if (existing.tentative && !(kind === 'aux' && declared)) {
      throw new FlatnetError(
        'conflict',
        `${address} is held by another host and not declared as an aux address. If it is one, declare it on every host: --ipam-opt aux-addresses=${address} (a flatnet network declares its --aux-address itself).`,
      );
    }
    if (kind === 'aux' && declared) delete existing.tentative;
    existing.holders[hostId] = (existing.holders[hostId] ?? 0) + 1;
  } else {
    reservations.push({
      address,
      kind,
      holders: { [hostId]: 1 },
      ...(kind === 'aux' && !declared ? { tentative: true as const } : {}),
    });
  }
  return { ...c, reservations };
}

/** The operator declared these aux addresses (held by this host): other hosts may join them. undefined = no change. */
export function declareAux(c: PoolConfig, hostId: string, addresses: readonly string[]): PoolConfig | undefined {
  let changed = false;
  const reservations = c.reservations.map((r) => {
    if (!r.tentative || r.holders[hostId] === undefined || !addresses.includes(r.address)) return r;
    changed = true;
    const { tentative: _tentative, ...shared } = r;
    return shared;
  });
  return changed ? { ...c, reservations } : undefined;
}

/** Drops one of this host's references; undefined when the host held none (nothing to change). */
export function unreserve(c: PoolConfig, hostId: string, address: string): PoolConfig | undefined {
  const r = c.reservations.find((x) => x.address === address);
  const held = r?.holders[hostId];
  if (!r || held === undefined) return undefined;
  const holders = { ...r.holders };
  if (held > 1) holders[hostId] = held - 1;
  else delete holders[hostId];
  const others = c.reservations.filter((x) => x !== r);
  return { ...c, reservations: Object.keys(holders).length > 0 ? [...others, { ...r, holders }] : others };
}
