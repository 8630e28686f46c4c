/**
 * The operator's view of the address pools, shared by the CLI (`flatnet ip-range`, `host-range`, `ip list`,
 * `ip release`, `status`) and the server's metrics. Implemented over the etcd store; no allocation rule lives
 * in the callers.
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
  endpointName?: string;
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
  /** Frees an assigned address whoever holds it; returns what was freed, undefined when it was not assigned. */
  releaseAddress(address: string): Promise<AssignmentInfo | undefined>;
  poolSummaries(): Promise<PoolSummary[]>;
}
