/**
 * The network-driver side of the plugin, as the plugin API sees it: parsed requests in flatnet's own names.
 * Implemented over hostnet/ (links, addresses) and a host-local state directory.
 */
export interface IpamData {
  addressSpace: string;
  /** CIDR */
  pool: string;
  /** CIDR, absent when Docker skipped the gateway. */
  gateway?: string;
  /** name -> CIDR */
  auxAddresses: Record<string, string>;
}

export interface CreateNetworkInput {
  networkId: string;
  /** `-o key=value` strings (com.docker.network.generic). */
  generic: Record<string, string>;
  internal: boolean;
  enableIpv6: boolean;
  ipv4Data: IpamData[];
  ipv6Data: IpamData[];
}

export interface EndpointInterface {
  /** CIDR or '' */
  address: string;
  /** CIDR or '' */
  addressIPv6: string;
  /** colon-form MAC or '' */
  macAddress: string;
}

export interface CreateEndpointInput {
  networkId: string;
  endpointId: string;
  interface: EndpointInterface;
  /** Opaque endpoint options as Docker sent them. */
  options: Record<string, unknown>;
}

export interface CreateEndpointResult {
  /** Only fields Docker sent empty may be filled; null when nothing is added. */
  interface: { macAddress: string } | null;
}

export interface JoinInput {
  networkId: string;
  endpointId: string;
  sandboxKey: string;
  options: Record<string, unknown>;
}

export interface StaticRoute {
  destination: string;
  /** 0 = via NextHop, 1 = connected */
  routeType: 0 | 1;
  nextHop?: string;
}

export interface JoinResult {
  srcName: string;
  dstPrefix: string;
  /** Bare IP or '' */
  gateway: string;
  gatewayIPv6: string;
  staticRoutes: StaticRoute[];
  disableGatewayService: boolean;
}

export interface NetworkDriver {
  createNetwork(input: CreateNetworkInput): Promise<void>;
  deleteNetwork(networkId: string): Promise<void>;
  createEndpoint(input: CreateEndpointInput): Promise<CreateEndpointResult>;
  deleteEndpoint(networkId: string, endpointId: string): Promise<void>;
  endpointOperInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>>;
  join(input: JoinInput): Promise<JoinResult>;
  leave(networkId: string, endpointId: string): Promise<void>;
}
