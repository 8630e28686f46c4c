import { formatSubnet } from '../../net/address.js';
import type { AssignmentRead } from '../model/records.js';
import type { IndexedAddress, IpamStores } from '../ports.js';

/** The addresses one host holds, a page at a time, and where they came from. */
export interface HeldListing {
  /** From the host's own index (cost: what the host holds); false while an upgrade fills the index in. */
  fromIndex: boolean;
  pages: AsyncIterable<IndexedAddress[]>;
}

/**
 * What a host holds: its index once complete; until then (a cluster upgraded from the layout without it) every
 * pool's records, page by page, keeping the host's own, so that nothing it holds is missed. Either way a hint:
 * whatever frees an address compares its record again.
 */
export async function heldBy(stores: IpamStores, hostId: string): Promise<HeldListing> {
  if (await stores.hostIndex.complete()) return { fromIndex: true, pages: stores.hostIndex.entries(hostId) };
  return { fromIndex: false, pages: scanPools(stores, hostId) };
}

async function* scanPools(stores: IpamStores, hostId: string): AsyncGenerator<IndexedAddress[]> {
  for (const subnet of await stores.pools.listSubnets()) {
    for await (const page of stores.addresses.pages(subnet)) {
      const mine = page.flatMap(({ address, read }) =>
        read !== 'unreadable' && read.assignment.hostId === hostId
          ? [{ subnet: formatSubnet(subnet), address, since: read.assignment.since, poolId: read.assignment.poolId }]
          : [],
      );
      if (mine.length > 0) yield mine;
    }
  }
}

/** The records behind a page of index entries (one read per pool in the page); absent = no record any more. */
export async function recordsOf(
  stores: IpamStores,
  page: readonly IndexedAddress[],
): Promise<{ entry: IndexedAddress; read: AssignmentRead | undefined }[]> {
  const subnets = new Map((await stores.pools.listSubnets()).map((s) => [formatSubnet(s), s]));
  const bySubnet = new Map<string, IndexedAddress[]>();
  for (const e of page) bySubnet.set(e.subnet, [...(bySubnet.get(e.subnet) ?? []), e]);
  const out: { entry: IndexedAddress; read: AssignmentRead | undefined }[] = [];
  for (const [text, entries] of bySubnet) {
    const subnet = subnets.get(text);
    const reads = subnet
      ? await stores.addresses.readMany(
          subnet,
          entries.map((e) => e.address),
        )
      : new Map<string, AssignmentRead>();
    for (const entry of entries) out.push({ entry, read: reads.get(entry.address) });
  }
  return out;
}
