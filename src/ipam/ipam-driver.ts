/**
 * The IPAM side of the plugin, as the plugin API sees it: requests already parsed and validated at the edge,
 * in flatnet's own names. Implemented over the etcd store; the API layer only maps wire format to these calls.
 */
export const LOCAL_ADDRESS_SPACE = 'FlatLocal';
export const GLOBAL_ADDRESS_SPACE = 'FlatGlobal';

export interface RequestPoolInput {
  addressSpace: string;
  /** CIDR from --subnet, or '' when Docker lets the plugin choose. */
  pool: string;
  /** CIDR from --ip-range, or ''. */
  subPool: string;
  options: Record<string, string>;
  v6: boolean;
}

export interface RequestPoolResult {
  poolId: string;
  /** Canonical CIDR of the pool (network address, prefix). */
  pool: string;
  data: Record<string, string>;
}

export type AddressRequestKind = 'container' | 'gateway' | 'aux';

export interface RequestAddressInput {
  poolId: string;
  /** Preferred address (plain IP) or '' to let flatnet choose. */
  address: string;
  /** Derived from Options: the gateway request type marks a gateway; Docker sends aux requests with null options. */
  kind: AddressRequestKind;
  /** Colon-form MAC when Docker sends one (com.docker.network.endpoint.macaddress). */
  macAddress?: string;
  /** Container name when Docker sends it (com.docker.network.endpoint.name, v29+). */
  endpointName?: string;
}

export interface RequestAddressResult {
  /** CIDR: the address with the pool's prefix length. */
  address: string;
}

export interface IpamDriver {
  requestPool(input: RequestPoolInput): Promise<RequestPoolResult>;
  releasePool(poolId: string): Promise<void>;
  requestAddress(input: RequestAddressInput): Promise<RequestAddressResult>;
  releaseAddress(poolId: string, address: string): Promise<void>;
}
