import { FlatnetError } from '../errors.js';
import type { AddressRequestKind } from '../ipam/contract.js';
import { formatAddress, tryParseAddress } from '../net/address.js';

export const GATEWAY_REQUEST_TYPE = 'com.docker.network.gateway';
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const MAC_ADDRESS_OPTION = 'com.docker.network.endpoint.macaddress';
export const ENDPOINT_NAME_OPTION = 'com.docker.network.endpoint.name';
/** `--ipam-opt aux-addresses=IP[,IP…]`: the network's aux addresses, declared where flatnet sees them in time. */
export const AUX_ADDRESSES_OPTION = 'aux-addresses';

/** An address in one spelling (fd00::05 and fd00::5 alike); undefined when it is not a plain address. */
export function canonicalAddress(text: string): string | undefined {
  const a = tryParseAddress(text);
  return a && text === text.trim() ? formatAddress(a.family, a.value) : undefined;
}

/** The aux addresses a RequestPool declares (undefined = the option is absent); a malformed list is refused. */
export function declaredAux(options: Record<string, string>): string[] | undefined {
  const raw = options[AUX_ADDRESSES_OPTION];
  if (raw === undefined) return undefined;
  return raw
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => {
      const a = canonicalAddress(s.trim());
      if (a === undefined)
        throw new FlatnetError(
          'invalid',
          `--ipam-opt ${AUX_ADDRESSES_OPTION}: "${s}" is not an IP address (give plain addresses, comma-separated).`,
        );
      return a;
    });
}

/**
 * Decides what a RequestAddress is for. Docker marks only the gateway; an aux address (--aux-address) and a
 * 20.10 container's --ip both arrive as "Address set, Options null". They differ in *when* they come: aux
 * requests only between RequestPool and CreateNetwork of the same pool (network create), container requests
 * only after CreateNetwork (a container cannot join a network that does not exist yet). So a bare request with
 * an address for a pool still in its creation window is aux; anything else is a container.
 *
 * Under another network driver (flatnet as IPAM only) no CreateNetwork closes the window, so a `--ip` container
 * right after `network create` looks like an aux request too. Two answers keep it from sharing an address:
 *  - a RequestPool that declares its aux addresses (`--ipam-opt aux-addresses=…`, `declared` here) makes exactly
 *    those aux: any other bare address is a container's;
 *  - without a declaration, an aux reservation is "tentative" (core/reservations.ts): its host holds it alone
 *    until the flatnet driver's CreateNetwork lists it among the network's AuxAddresses; another host asking for
 *    it is refused, so two hosts' containers never share it.
 */
export function addressKind(req: {
  address: string;
  options: Record<string, string>;
  poolInCreation: boolean;
  /** The aux addresses the pool's RequestPool declared (canonical), or undefined when it declared none. */
  declared?: readonly string[] | undefined;
}): AddressRequestKind {
  if (req.options[REQUEST_ADDRESS_TYPE] === GATEWAY_REQUEST_TYPE) return 'gateway';
  if (req.address === '') return 'container';
  // MAC (RequiresMACAddress) and endpoint name (v29+) are only ever sent for containers.
  if (req.options[MAC_ADDRESS_OPTION] !== undefined || req.options[ENDPOINT_NAME_OPTION] !== undefined) {
    return 'container';
  }
  if (!req.poolInCreation) return 'container';
  if (req.declared === undefined) return 'aux';
  const a = canonicalAddress(req.address);
  return a !== undefined && req.declared.includes(a) ? 'aux' : 'container';
}

/**
 * Pools this process handed out whose network Docker has not created yet (see addressKind). In memory on
 * purpose: a window lasts milliseconds, and after a restart in the middle of one the fallback is 'container'.
 * A window also closes after `maxAgeMs`: when flatnet is only the IPAM (another network driver), no
 * CreateNetwork reaches it, and a later `docker run --ip` must still get an exclusive container address.
 */
export class PoolCreationWindows {
  private readonly open = new Map<
    string,
    { pool: string; openedAt: number; declared: readonly string[] | undefined }
  >();

  constructor(
    private readonly limit = 1024,
    private readonly maxAgeMs = 5000,
  ) {}

  /** `declared`: the aux addresses the RequestPool declared (see declaredAux), undefined = none. */
  opened(poolId: string, pool: string, declared?: readonly string[]): void {
    this.open.delete(poolId);
    this.open.set(poolId, { pool, openedAt: Date.now(), declared });
    // Pools Docker held and never created a network for (a failed create it did not clean up) must not pile up.
    while (this.open.size > this.limit) {
      const oldest = this.open.keys().next().value;
      if (oldest === undefined) break;
      this.open.delete(oldest);
    }
  }

  released(poolId: string): void {
    this.open.delete(poolId);
  }

  /** CreateNetwork names pools by CIDR, not PoolID. */
  networkCreated(pools: readonly string[]): void {
    for (const [id, w] of this.open) if (pools.includes(w.pool)) this.open.delete(id);
  }

  isOpen(poolId: string): boolean {
    const w = this.open.get(poolId);
    if (w === undefined) return false;
    if (Date.now() - w.openedAt <= this.maxAgeMs) return true;
    this.open.delete(poolId);
    return false;
  }

  /** The aux addresses the open window's RequestPool declared (undefined: none, or no open window). */
  declaredFor(poolId: string): readonly string[] | undefined {
    return this.isOpen(poolId) ? this.open.get(poolId)?.declared : undefined;
  }

  /** A gateway or aux request keeps the window open: a network create slowed by etcd is still one create. */
  touched(poolId: string): void {
    const w = this.open.get(poolId);
    if (w !== undefined) w.openedAt = Date.now();
  }
}
