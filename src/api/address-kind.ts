import type { AddressRequestKind } from '../ipam/contract.js';

export const GATEWAY_REQUEST_TYPE = 'com.docker.network.gateway';
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';
export const MAC_ADDRESS_OPTION = 'com.docker.network.endpoint.macaddress';
export const ENDPOINT_NAME_OPTION = 'com.docker.network.endpoint.name';

/**
 * Decides what a RequestAddress is for. Docker marks only the gateway; an aux address (--aux-address) and a
 * 20.10 container's --ip both arrive as "Address set, Options null". They differ in *when* they come: aux
 * requests only between RequestPool and CreateNetwork of the same pool (network create), container requests
 * only after CreateNetwork (a container cannot join a network that does not exist yet). So a bare request with
 * an address for a pool still in its creation window is aux; anything else is a container.
 */
export function addressKind(req: {
  address: string;
  options: Record<string, string>;
  poolInCreation: boolean;
}): AddressRequestKind {
  if (req.options[REQUEST_ADDRESS_TYPE] === GATEWAY_REQUEST_TYPE) return 'gateway';
  if (req.address === '') return 'container';
  // MAC (RequiresMACAddress) and endpoint name (v29+) are only ever sent for containers.
  if (req.options[MAC_ADDRESS_OPTION] !== undefined || req.options[ENDPOINT_NAME_OPTION] !== undefined) {
    return 'container';
  }
  return req.poolInCreation ? 'aux' : 'container';
}

/**
 * Pools this process handed out whose network Docker has not created yet (see addressKind). In memory on
 * purpose: a window lasts milliseconds, and after a restart in the middle of one the fallback is 'container'.
 * A window also closes after `maxAgeMs`: when flatnet is only the IPAM (another network driver), no
 * CreateNetwork reaches it, and a later `docker run --ip` must still get an exclusive container address.
 */
export class PoolCreationWindows {
  private readonly open = new Map<string, { pool: string; openedAt: number }>();

  constructor(
    private readonly limit = 1024,
    private readonly maxAgeMs = 5000,
  ) {}

  opened(poolId: string, pool: string): void {
    this.open.delete(poolId);
    this.open.set(poolId, { pool, openedAt: Date.now() });
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

  /** A gateway or aux request keeps the window open: a network create slowed by etcd is still one create. */
  touched(poolId: string): void {
    const w = this.open.get(poolId);
    if (w !== undefined) w.openedAt = Date.now();
  }
}
