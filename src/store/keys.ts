import { type Subnet, formatSubnet } from '../net/address.js';

/*
 * etcd key layout of the IPAM (P = the configured prefix, default /flatnet). Nothing else knows these keys.
 *
 *   P/ipam/v1/pools                              pool index: JSON {"subnets":["10.20.0.0/24",...]}. Every pool
 *                                                create/delete compares its mod revision, which makes the
 *                                                cross-pool overlap check transactional.
 *   P/ipam/v1/pool/<S>/config                    pool config JSON: subnet, gateway, ranges [{start,end,origin,
 *                                                createdAt}], hostRanges, reservations [{address,kind,holders:
 *                                                {"~keyed":1},tentative?}] (no per-host data), claims [] (older versions kept every
 *                                                host's claims here: still read, moved to the claim keys on the
 *                                                next write). Ranges are intervals: adding a /8 writes this one key.
 *   P/ipam/v1/pool/<S>/claim/<hostId>            that host's claims JSON [{hostId,poolId,subPool,since}] (one entry
 *                                                per network; [] once its last network went: never deleted alone,
 *                                                so that a pool update's range compare sees every release). Apart
 *                                                from the config, so that a network create or rm changes no key an
 *                                                allocation compares. <hostId> URI-encoded.
 *   P/ipam/v1/pool/<S>/hold/<ip>/<hostId>        one host's hold of the gateway/aux reservation <ip> JSON {"refs":n}
 *                                                (one per network of that host needing it); deleted at 0. The
 *                                                config lists the reservation once, with holders {"~keyed":1}
 *                                                (older versions kept {hostId:refs} there: still read, each host's
 *                                                moved here at its next write). <hostId> URI-encoded.
 *   P/ipam/v1/pool/<S>/block/<hex>               32-byte bitmap of the container addresses assigned in block
 *                                                <hex> (offset >> 8, fixed-width hex); absent = all free.
 *   P/ipam/v1/pool/<S>/sum/<LL>/<hex>            32-byte summary node at level LL (offset >> 8*(LL+1)): bit c
 *                                                = "child c is full". Hints only, kept by the block txns.
 *   P/ipam/v1/pool/<S>/addr/<ip>                 assignment JSON {hostId,since,poolId,macAddress?,endpointName?,
 *                                                endpointId?,networkId?,containerId?,containerName?}: held only;
 *                                                or a conflict record (an outside machine answered ARP for it):
 *                                                {hostId:"~conflict",since,poolId,conflict:{mac?,seenAt,seenBy}}.
 *   P/ipam/v1/pool/<S>/cool/<hex>                cooling entries of block <hex>: 6 bytes per released offset (bit,
 *                                                flags 1=parked for a name, uint32 BE release time in epoch
 *                                                seconds); absent = none. Written only with its block (whose
 *                                                revision compare covers it); versions without cooling ignore it.
 *   P/ipam/v1/pool/<S>/rel/<ip>                  released record JSON: the last assignment plus releasedAt, while
 *                                                the address cools or is parked; changed only in block txns.
 *   P/ipam/v1/pool/<S>/name/<name>               name index JSON {"address":"10.20.0.7"}: the address a container
 *                                                name (Docker 29+) last held or released in the pool. A hint: the
 *                                                addr/rel record decides. <name> URI-encoded.
 *   P/ipam/v1/host/<hostId>/addr/<S>/<ip>        host index entry JSON {since,poolId}: one per addr record, under
 *                                                the record's hostId (conflict records under "~conflict"), put and
 *                                                deleted in the same txn as the record, so "what does host X hold"
 *                                                is one prefix read that costs what X holds. A hint: the addr record
 *                                                decides (an index entry whose record is gone or names another
 *                                                holder is stale: its host's reconcile drops it). <hostId>
 *                                                URI-encoded.
 *   P/ipam/v1/layout                             layout marker JSON {hostIndex:"filling"|"complete", cursor?:
 *                                                {subnet,after}, passStart?, olderSeenAt?}: absent on a cluster
 *                                                from before the host index. "complete" once a backfill pass has
 *                                                indexed every addr record with no older version alive; until then
 *                                                readers list the pools (see store/host-index.ts).
 *
 * <S> is the pool's canonical subnet with "/" written "_" (10.20.0.0_24, fd00::_64). An allocation is one
 * txn comparing the config's mod revision, the block's mod revision (or create revision 0 when absent) and
 * create revision 0 of each new addr key; it writes the block, the addr keys and any summary bit that changed.
 * A host's own pool change (claim, hold) compares the config and that host's claim/hold keys only; a whole-pool
 * update also compares the claim/ and hold/ ranges as unchanged since its read (see pool-repository.ts).
 */
export class IpamKeys {
  readonly root: string;

  constructor(prefix: string) {
    this.root = `${prefix.replace(/\/+$/, '')}/ipam/v1`;
  }

  index(): string {
    return `${this.root}/pools`;
  }

  poolPrefix(subnet: Subnet): string {
    return `${this.root}/pool/${formatSubnet(subnet).replace('/', '_')}/`;
  }

  /** Prefix of every pool's keys (for listing assignments across pools). */
  allPoolsPrefix(): string {
    return `${this.root}/pool/`;
  }

  config(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}config`;
  }

  blockPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}block/`;
  }

  block(subnet: Subnet, index: bigint): string {
    const width = Math.max(1, Math.ceil((subnet.hostBits - 8) / 4));
    return `${this.blockPrefix(subnet)}${index.toString(16).padStart(width, '0')}`;
  }

  summary(subnet: Subnet, level: number, index: bigint): string {
    return `${this.poolPrefix(subnet)}sum/${String(level).padStart(2, '0')}/${index.toString(16)}`;
  }

  addrPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}addr/`;
  }

  addr(subnet: Subnet, address: string): string {
    return `${this.addrPrefix(subnet)}${address}`;
  }

  coolPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}cool/`;
  }

  /** Same width as the block's key, so that blockOfKey reads both. */
  cool(subnet: Subnet, index: bigint): string {
    return `${this.coolPrefix(subnet)}${this.block(subnet, index).slice(this.blockPrefix(subnet).length)}`;
  }

  releasedPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}rel/`;
  }

  released(subnet: Subnet, address: string): string {
    return `${this.releasedPrefix(subnet)}${address}`;
  }

  claimPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}claim/`;
  }

  /** One host's claims on the pool (its networks on it). */
  claim(subnet: Subnet, hostId: string): string {
    return `${this.claimPrefix(subnet)}${encodeURIComponent(hostId)}`;
  }

  /** Every host's index entries (fsck's comparison of the index with the records). */
  hostIndexPrefix(): string {
    return `${this.root}/host/`;
  }

  /** One host's index of the addresses it holds, in every pool. */
  hostAddrPrefix(hostId: string): string {
    return `${this.hostIndexPrefix()}${encodeURIComponent(hostId)}/addr/`;
  }

  /** One host's index entries in one pool. */
  hostAddrPoolPrefix(hostId: string, subnet: Subnet): string {
    return `${this.hostAddrPrefix(hostId)}${formatSubnet(subnet).replace('/', '_')}/`;
  }

  hostAddr(hostId: string, subnet: Subnet, address: string): string {
    return `${this.hostAddrPoolPrefix(hostId, subnet)}${address}`;
  }

  layout(): string {
    return `${this.root}/layout`;
  }

  holdPrefix(subnet: Subnet): string {
    return `${this.poolPrefix(subnet)}hold/`;
  }

  /** Every host's hold of one gateway/aux address: counting them says whether anybody still holds it. */
  holdsOf(subnet: Subnet, address: string): string {
    return `${this.holdPrefix(subnet)}${address}/`;
  }

  /** One host's hold of one gateway/aux address (its reference count). */
  hold(subnet: Subnet, address: string, hostId: string): string {
    return `${this.holdsOf(subnet, address)}${encodeURIComponent(hostId)}`;
  }

  name(subnet: Subnet, name: string): string {
    return `${this.poolPrefix(subnet)}name/${encodeURIComponent(name)}`;
  }
}

/** The exclusive end of a prefix range (etcd's range_end for "all keys starting with p"). */
export function prefixEnd(p: string): string {
  const b = Buffer.from(p);
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] as number) < 0xff) {
      b[i] = (b[i] as number) + 1;
      return b.subarray(0, i + 1).toString('latin1');
    }
  }
  return '\0';
}

/** The address part of an addr key (the inverse of IpamKeys.addr). */
export function addressOfKey(addrPrefix: string, key: string): string {
  return key.slice(addrPrefix.length);
}

/** The subnet text (canonical CIDR) and address of a host index key, given its host's prefix. */
export function hostAddrOfKey(hostAddrPrefix: string, key: string): { subnet: string; address: string } | undefined {
  const rest = key.slice(hostAddrPrefix.length);
  const slash = rest.indexOf('/');
  if (!key.startsWith(hostAddrPrefix) || slash < 0) return undefined;
  return { subnet: rest.slice(0, slash).replace('_', '/'), address: rest.slice(slash + 1) };
}

/** The block index of a block key (the inverse of IpamKeys.block). */
export function blockOfKey(blockPrefix: string, key: string): bigint {
  return BigInt(`0x${key.slice(blockPrefix.length)}`);
}
