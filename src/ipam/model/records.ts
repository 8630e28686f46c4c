import { z } from 'zod';

/**
 * What one pool (one subnet, cluster-wide) stores in its config key. Addresses are kept as text so that the
 * etcd contents stay readable; pure code turns them into offsets. The schema parses what comes back from etcd.
 */
// Lenient on purpose: records written by older versions must still read.
const hostIdText = z.string().min(1).max(64);

export const ipRangeRecord = z.object({
  start: z.string(),
  end: z.string(),
  origin: z.enum(['admin', 'docker']),
  createdAt: z.string(),
});

export const hostRangeRecord = z.object({ start: z.string(), end: z.string(), createdAt: z.string() });

export const reservationRecord = z.object({
  address: z.string(),
  kind: z.enum(['gateway', 'aux']),
  /** Reference count per host: each host's Docker reserves the same gateway once per network. */
  holders: z.record(hostIdText, z.number().int().positive()),
  /**
   * An aux address nobody declared yet: a bare address asked for while the pool's network was being created, which
   * may as well be a container's --ip (flatnet as IPAM only never sees the CreateNetwork that tells them apart).
   * Only its first host holds it; another host may join once it is declared (the flatnet driver's CreateNetwork
   * lists it, or --ipam-opt aux-addresses). Absent = shared (as every reservation written before).
   */
  tentative: z.literal(true).optional(),
});

export const claimRecord = z.object({
  hostId: hostIdText,
  poolId: z.string(),
  subPool: z.string(),
  since: z.string(),
});

export const poolConfigSchema = z.object({
  subnet: z.string(),
  gateway: z.string().optional(),
  ranges: z.array(ipRangeRecord),
  hostRanges: z.array(hostRangeRecord),
  reservations: z.array(reservationRecord),
  claims: z.array(claimRecord),
});

export type IpRangeRecord = z.infer<typeof ipRangeRecord>;
export type HostRangeRecord = z.infer<typeof hostRangeRecord>;
export type ReservationRecord = z.infer<typeof reservationRecord>;
export type ClaimRecord = z.infer<typeof claimRecord>;
export type PoolConfig = z.infer<typeof poolConfigSchema>;

/**
 * An address a machine outside flatnet answered ARP for (RFC 5227 probe): stored like an assignment (its block bit
 * set, its addr key) so that every host's allocator skips it, held by CONFLICT_HOLDER, which no real host id can be.
 */
export const conflictSchema = z.object({
  /** The answering machine's MAC (lower case), when the probe saw one. */
  mac: z.string().optional(),
  /** ISO time of the probe that got the answer. */
  seenAt: z.string(),
  /** The host whose probe got the answer. */
  seenBy: hostIdText,
});
export type ConflictSeen = z.infer<typeof conflictSchema>;

/** The holder of a conflict record: not a valid host id (those start with a letter or digit). */
export const CONFLICT_HOLDER = '~conflict';

export const assignmentSchema = z.object({
  hostId: hostIdText,
  since: z.string(),
  poolId: z.string(),
  macAddress: z.string().optional(),
  /** The container name Docker 29+ sends in RequestAddress. */
  endpointName: z.string().optional(),
  /*
   * Who holds the address, filled after the reply: the network driver's CreateEndpoint (endpoint, network) and
   * Docker's own API after Join (container id and name). Absent until then, or when Docker's API is unreachable.
   */
  endpointId: z.string().optional(),
  networkId: z.string().optional(),
  containerId: z.string().optional(),
  containerName: z.string().optional(),
  /** Set on a conflict record (hostId CONFLICT_HOLDER): who answered for the address, seen when and by whom. */
  conflict: conflictSchema.optional(),
});
export type Assignment = z.infer<typeof assignmentSchema>;

export function emptyPoolConfig(subnet: string): PoolConfig {
  return { subnet, ranges: [], hostRanges: [], reservations: [], claims: [] };
}

/** What an address key holds as read: the assignment, or 'unreadable' (malformed JSON or schema). */
export type AssignmentRead = { assignment: Assignment } | 'unreadable';
