/**
 * The IPAM contract, in one place: what the plugin API (IpamDriver) and the operator's tools (IpamAdmin: CLI,
 * metrics) may ask of the IPAM, with the request and result types in flatnet's own names and the capabilities
 * flatnet announces. Requests arrive parsed and validated at the edge; the well-known refusals are the named
 * constructors of src/errors.ts (poolNotFound, poolExhausted, addressInUse, ...), each a FlatnetError whose kind
 * the edges map (HTTP status and {"Err"}, CLI exit code).
 */

export const LOCAL_ADDRESS_SPACE = 'FlatLocal';
export const GLOBAL_ADDRESS_SPACE = 'FlatGlobal';

/** flatnet persists everything in etcd, so Docker need not replay requests at its start; MACs are optional. */
export const IPAM_CAPABILITIES = { RequiresMACAddress: false, RequiresRequestReplay: false } as const;

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
  /**
   * For aux: the operator declared the address as aux (--ipam-opt aux-addresses), so other hosts may share it.
   * Undeclared, it is held by this host only until the flatnet driver's CreateNetwork declares it (declareAux).
   */
  declared?: boolean;
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
  /**
   * The flatnet network driver's CreateNetwork names the network's aux addresses (--aux-address): this host's
   * undeclared aux reservations among them become shared. `pool` is the CIDR, `addresses` plain IPs.
   */
  declareAux(pool: string, addresses: readonly string[]): Promise<void>;
}

/*
 * The operator's view of the address pools, shared by the CLI (`flatnet ip-range`, `host-range`, `ip list`,
 * `ip release`, `status`) and the server's metrics. No allocation rule lives in the callers.
 */
export type RangeOrigin = 'admin' | 'docker';

export interface IpRangeInfo {
  /** Canonical CIDR of the pool the range belongs to. */
  subnet: string;
  start: string;
  end: string;
  origin: RangeOrigin;
  /** Addresses in the range as a decimal string (IPv6 ranges exceed Number). */
  size: string;
  createdAt: string;
}

export interface HostRangeInfo {
  subnet: string;
  start: string;
  end: string;
  createdAt: string;
}

export interface AssignmentInfo {
  address: string;
  subnet: string;
  hostId: string;
  /** ISO time of the allocation. */
  since: string;
  kind: 'container';
  macAddress?: string;
  /** The container name Docker 29+ sent with the request. */
  endpointName?: string;
  /** Filled after the reply: the endpoint and network (CreateEndpoint), the container (Docker's API after Join). */
  endpointId?: string;
  networkId?: string;
  containerId?: string;
  containerName?: string;
}

/** An address a machine outside flatnet answered ARP for: skipped by every host until cleared. */
export interface ConflictInfo {
  address: string;
  subnet: string;
  /** The answering machine's MAC, when seen. */
  mac?: string;
  /** ISO time of the probe that got the answer. */
  seenAt: string;
  /** The host whose probe got it. */
  seenBy: string;
}

/** A released address still cooling, or parked for the container name that released it. */
export interface ReleasedInfo extends Omit<AssignmentInfo, 'kind'> {
  kind: 'cooling' | 'parked';
  /** ISO time of the release. */
  releasedAt: string;
}

export interface ReservationInfo {
  address: string;
  subnet: string;
  kind: 'gateway' | 'aux';
  /** Hosts whose Docker holds the reservation (a reservation lives while any host holds it). */
  hostIds: string[];
}

export interface PoolClaimInfo {
  hostId: string;
  poolId: string;
  subPool: string;
  since: string;
}

export interface PoolSummary {
  subnet: string;
  family: 4 | 6;
  gateway?: string;
  ranges: IpRangeInfo[];
  hostRanges: HostRangeInfo[];
  reservations: ReservationInfo[];
  claims: PoolClaimInfo[];
  /** Allocatable addresses (ranges minus host ranges, reservations, network and broadcast), decimal string. */
  size: string;
  used: number;
  /** size - used, decimal string. */
  free: string;
}

export interface IpRangeSpec {
  /** First address, plain or with the pool's prefix length (oam-docker-ipam style 192.168.0.100/24). */
  start: string;
  /** Last address (inclusive), same form. */
  end: string;
}

export interface HostRangeSpec extends IpRangeSpec {
  /** The LAN router: becomes the pool's default gateway and is never handed to containers. */
  gateway?: string;
}

export interface IpamAdmin {
  /** Creates the pool (subnet from the prefix length) if needed; refuses overlapping or malformed ranges. */
  addIpRange(spec: IpRangeSpec): Promise<IpRangeInfo>;
  /** Refuses while any address inside the range is assigned. */
  removeIpRange(spec: IpRangeSpec): Promise<void>;
  listIpRanges(): Promise<IpRangeInfo[]>;
  addHostRange(spec: HostRangeSpec): Promise<HostRangeInfo>;
  removeHostRange(spec: IpRangeSpec): Promise<void>;
  listHostRanges(): Promise<HostRangeInfo[]>;
  listAssignments(filter?: { subnet?: string; hostId?: string }): Promise<AssignmentInfo[]>;
  /** The same a page at a time, for a caller that prints as it reads (memory: one page). */
  assignmentPages(filter?: { subnet?: string; hostId?: string }): AsyncIterable<AssignmentInfo[]>;
  /** Released addresses not yet handed out again (cooling, or parked for a name), oldest release first. */
  listReleased(filter?: { subnet?: string; hostId?: string }): Promise<ReleasedInfo[]>;
  /** Frees an assigned address whoever holds it; returns what was freed, undefined when it was not assigned. */
  releaseAddress(address: string): Promise<AssignmentInfo | undefined>;
  poolSummaries(): Promise<PoolSummary[]>;
  /** Addresses machines outside flatnet answered for (oldest first). */
  listConflicts(filter?: { subnet?: string }): Promise<ConflictInfo[]>;
  /** Frees a conflict record (the address becomes free at once); refuses any other address. */
  clearConflict(address: string): Promise<ConflictInfo>;
}
