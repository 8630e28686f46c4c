import { FlatnetError } from '../errors.js';
import { GLOBAL_ADDRESS_SPACE, LOCAL_ADDRESS_SPACE } from '../ipam/contract.js';
import type { CreateNetworkInput } from './network-driver.js';

const FLATNET_SPACES: readonly string[] = [LOCAL_ADDRESS_SPACE, GLOBAL_ADDRESS_SPACE];

/**
 * What a flatnet network cannot be, refused at CreateNetwork before anything changes:
 * - addresses from another IPAM driver (Docker's default hands out 172.x pools in its own "LocalDefault"
 *   space): they are not in etcd, so two hosts would give one address to two containers on the one LAN;
 * - `--internal`: the containers sit on the LAN itself, so there is no external access to take away, and
 *   accepting the flag would promise an isolation flatnet does not give.
 */
export function refuseUnsupportedNetwork(input: CreateNetworkInput): void {
  const foreign = [...input.ipv4Data, ...input.ipv6Data].find((d) => !FLATNET_SPACES.includes(d.addressSpace));
  if (foreign !== undefined) {
    throw new FlatnetError(
      'invalid',
      `The pool ${foreign.pool} comes from another IPAM driver (address space "${foreign.addressSpace}"): ` +
        'flatnet networks take their addresses from flatnet; add --ipam-driver flatnet to docker network create.',
    );
  }
  if (input.internal) {
    throw new FlatnetError(
      'invalid',
      '--internal is not supported: flatnet containers sit on the LAN itself, so there is no external access to cut off; create the network without --internal.',
    );
  }
}
