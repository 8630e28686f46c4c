import { addressAt, formatSubnet, parseAddress, subnetContains } from '../../net/address.js';
import { FlatnetError } from '../../errors.js';
import { anyAssigned } from '../core/block-ops.js';
import { isConflict } from '../core/conflicts.js';
import { blockOf } from '../core/bitmap.js';
import { dropRanges, forgetHostInPool, hostHolds, poolIsUnused } from '../core/pool-rules.js';
import type { AssignmentRead } from '../model/records.js';
import type { IpamStores } from '../ports.js';
import { heldBy } from './held-addresses.js';
import { updatePool } from './pool-update.js';
import { releaseWhere } from './reconcile-release.js';
import type { CoolingOptions } from './allocation-service.js';

/** What a host holds cluster-wide: claim entries, gateway/aux references, container addresses. */
export interface HostFootprint {
  hostId: string;
  claims: { subnet: string; count: number }[];
  reservations: { subnet: string; address: string; kind: 'gateway' | 'aux'; count: number }[];
  addresses: { subnet: string; address: string }[];
}

/** The addresses come from the host's index (paged), or every pool's records while an upgrade fills it. */
export async function hostFootprint(stores: IpamStores, hostId: string): Promise<HostFootprint> {
  const out: HostFootprint = { hostId, claims: [], reservations: [], addresses: [] };
  for (const p of await stores.pools.readAll()) {
    const subnet = formatSubnet(p.subnet);
    const h = hostHolds(p.config, hostId);
    if (h.claims > 0) out.claims.push({ subnet, count: h.claims });
    for (const r of h.reservations) out.reservations.push({ subnet, ...r });
  }
  for await (const page of (await heldBy(stores, hostId)).pages)
    for (const e of page) out.addresses.push({ subnet: e.subnet, address: e.address });
  return out;
}

/**
 * `flatnet host forget`: drops everything a retired host holds (its addresses first, then its claims and
 * reservations, then the Docker ranges and pools nothing uses any more). The caller checks that the host is not
 * alive. Returns what it held.
 */
export async function forgetHost(stores: IpamStores, hostId: string, cooling?: CoolingOptions): Promise<HostFootprint> {
  const held = await hostFootprint(stores, hostId);
  const subnets = await stores.pools.listSubnets();
  const freed = await releaseWhere(
    stores,
    held.addresses.flatMap((a) => {
      const s = subnets.find((x) => formatSubnet(x) === a.subnet);
      if (!s) return [];
      const offset = parseAddress(a.address).value - s.network;
      return [
        {
          ref: { subnet: s },
          offset,
          accept: (h: AssignmentRead) => h !== 'unreadable' && h.assignment.hostId === hostId,
        },
      ];
    }),
    cooling,
  );
  // What was not freed was no longer this host's (a stale index entry): the entry goes too.
  const unfreed = held.addresses.filter((a) => !freed.includes(a.address));
  if (unfreed.length > 0 && (await stores.hostIndex.complete()))
    await stores.hostIndex.dropStale(
      hostId,
      unfreed.map((a) => ({ ...a, since: '', poolId: '' })),
    );
  for (const s of subnets) {
    await updatePool(stores.pools, `forget host ${hostId}`, s, async (tx) => {
      if (!tx.current) return { result: undefined };
      const h = hostHolds(tx.current, hostId);
      if (h.claims === 0 && h.reservations.length === 0) return { result: undefined };
      const { config, droppable } = forgetHostInPool(tx.current, hostId);
      let next = config;
      if (droppable.length > 0) {
        const idle: typeof droppable = [];
        for (const r of droppable) if (!anyAssigned(await tx.blocks(r), r)) idle.push(r);
        next = dropRanges(config, s, idle);
      }
      return { result: undefined, next: poolIsUnused(next) ? 'delete' : next };
    });
  }
  return held;
}

export type OperatorRelease =
  | { outcome: 'freed'; subnet: string; address: string; read: AssignmentRead }
  | { outcome: 'not-assigned'; address: string };

/** The record of an address as stored (undefined: no pool contains it or nothing is assigned). */
export async function readAssignment(
  stores: IpamStores,
  text: string,
): Promise<{ subnet: string; address: string; read: AssignmentRead } | undefined> {
  const a = parseAddress(text);
  const s = (await stores.pools.listSubnets()).find((x) => subnetContains(x, a.family, a.value));
  if (!s) return undefined;
  const offset = a.value - s.network;
  const address = addressAt(s, offset);
  const view = await stores.blocks.read(s, blockOf(offset), [address]);
  const read = view?.assignments.get(address);
  return read === undefined ? undefined : { subnet: formatSubnet(s), address, read };
}

/**
 * `flatnet ip release`: frees the address whoever holds it, readable record or not; only the record that was
 * read is freed (a re-assignment in between is left alone).
 */
export async function operatorRelease(
  stores: IpamStores,
  text: string,
  cooling?: CoolingOptions,
): Promise<OperatorRelease> {
  const found = await readAssignment(stores, text);
  if (!found) return { outcome: 'not-assigned', address: text };
  if (isConflict(found.read)) {
    throw new FlatnetError(
      'conflict',
      `${found.address} is a recorded conflict (a machine outside flatnet answered for it), not a container's; use flatnet ip clear-conflict ${found.address}`,
    );
  }
  const a = parseAddress(found.address);
  const s = (await stores.pools.listSubnets()).find((x) => formatSubnet(x) === found.subnet);
  if (!s) return { outcome: 'not-assigned', address: text };
  const same = (h: AssignmentRead): boolean =>
    found.read === 'unreadable'
      ? h === 'unreadable'
      : h !== 'unreadable' &&
        h.assignment.since === found.read.assignment.since &&
        h.assignment.hostId === found.read.assignment.hostId;
  const freed = await releaseWhere(
    stores,
    [{ ref: { subnet: s }, offset: a.value - s.network, accept: same }],
    cooling,
  );
  return freed.length > 0 ? { outcome: 'freed', ...found } : { outcome: 'not-assigned', address: text };
}
