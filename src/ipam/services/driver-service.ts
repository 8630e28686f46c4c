import { FlatnetError } from '../../errors.js';
import { addressAt, formatSubnet } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { allocationFailures, allocations, releases } from '../../observability/metrics.js';
import { GroupCommit } from '../../util/group-commit.js';
import { blockOf } from '../core/bitmap.js';
import type { ContainerRelease } from '../core/block-ops.js';
import { parsePoolId, type PoolRef } from '../core/pool-id.js';
import type {
  IpamDriver,
  RequestAddressInput,
  RequestAddressResult,
  RequestPoolInput,
  RequestPoolResult,
} from '../contract.js';
import type { IpamStores } from '../ports.js';
import { AddressService, offsetInPool } from './address-service.js';
import { AllocationService, type AssignmentMeta, COOLING_OFF, type CoolingOptions } from './allocation-service.js';
import { IpamAdminService } from './admin-service.js';
import { PoolService } from './pool-service.js';
import { releaseWhere } from './reconcile-release.js';
import type { DrainResult, JournalEntry, ReleaseJournal } from './release-journal.js';
import { ReleasesAhead } from './releases-ahead.js';

/**
 * Callers one run looks at: a block's worth. A run serves what one commit may carry (the store's capacity) and
 * leaves the rest for the next run.
 */
const MAX_BATCH = 256;
/** How long a batch may wait for callers the last one served (see GroupCommit); small beside a docker run. */
const GATHER_MS = 2;

export interface IpamDriverOptions {
  /** Where releases that cannot reach etcd wait (none: they fail back to Docker). */
  journal?: ReleaseJournal;
  /**
   * With a journal: ReleaseAddress answers once its journal entry is written, and its etcd txn runs after the
   * reply (Docker waits for the release before `docker rm` and `docker run --rm` return, and a release cannot
   * be refused anyway: the container is gone). Default false: the release answers after its txn.
   */
  releaseAfterReply?: boolean;
  /** Cooldown and sticky names (default: off). */
  cooling?: CoolingOptions;
  /** Told after each container address handed out (the conflict probe tops its candidates up); must not block. */
  onAllocated?: (poolId: string) => void;
}

interface ReleaseRequest {
  ref: PoolRef;
  poolId: string;
  offset: bigint;
}

/** The IpamDriver: routes each request to its service and group-commits concurrent container requests. */
export class IpamDriverService implements IpamDriver {
  private readonly pools: PoolService;
  private readonly addresses: AddressService;
  private readonly allocator: AllocationService;
  private readonly allocations: GroupCommit<AssignmentMeta, string>;
  private readonly releases: GroupCommit<ReleaseRequest, ContainerRelease>;
  /** Address requests under way per subnet: the reconcile leaves those pools alone meanwhile. */
  private readonly requesting = new Map<string, number>();
  /** Releases answered before their write and the journal: waited for by requests that could want one back. */
  private readonly ahead: ReleasesAhead;
  private readonly cooling: CoolingOptions;
  private readonly onAllocated: ((poolId: string) => void) | undefined;

  constructor(
    private readonly stores: IpamStores,
    private readonly hostId: string,
    private readonly logger: Logger,
    options: IpamDriverOptions = {},
  ) {
    const cooling = options.cooling ?? COOLING_OFF;
    this.cooling = cooling;
    this.ahead = new ReleasesAhead((ref, poolId, offset) => this.commitRelease(ref, poolId, offset), logger, {
      ...(options.journal !== undefined ? { journal: options.journal } : {}),
      answerFirst: options.releaseAfterReply === true,
    });
    this.onAllocated = options.onAllocated;
    this.pools = new PoolService(stores.pools, hostId, logger);
    this.addresses = new AddressService(stores, hostId, logger, cooling);
    this.allocator = new AllocationService(stores.blocks, stores.retry, hostId, cooling, Math.random, logger);
    const batching = { maxBatch: MAX_BATCH, gatherMs: GATHER_MS };
    this.allocations = new GroupCommit(
      (poolId, metas) => this.allocator.allocate(parsePoolId(poolId), poolId, metas),
      batching,
    );
    // Releases are batched per block: one read and one commit free every address of the block that queued up.
    this.releases = new GroupCommit((_key, requests) => {
      const { ref, poolId } = requests[0] as ReleaseRequest;
      return this.addresses.releaseContainers(
        ref,
        poolId,
        requests.map((r) => r.offset),
      );
    }, batching);
  }

  requestPool(input: RequestPoolInput): Promise<RequestPoolResult> {
    return this.pools.requestPool(input);
  }

  async releasePool(poolId: string): Promise<void> {
    const at = new Date().toISOString();
    parsePoolId(poolId);
    await this.ahead.landed(poolId);
    // The claim the release chose: its journal entry names it, so that a replay after a write that applied with
    // its answer lost drops nothing more (a host with two networks on the pool would lose the other one's claim).
    let chosen: string | undefined;
    try {
      await this.pools.releasePool(poolId, { chose: (since) => (chosen = since) });
    } catch (err) {
      await this.ahead.journalIfUnavailable(
        { op: 'pool', poolId, at, ...(chosen !== undefined ? { claimSince: chosen } : {}) },
        err,
      );
    }
  }

  /** The next addresses this host hands out for the pool (see AllocationService.upcoming). */
  upcoming(poolId: string, n: number): Promise<string[]> {
    return this.allocator.upcoming(parsePoolId(poolId), poolId, n);
  }

  /**
   * Subnets with an address request or an answered release in flight here. The reconcile leaves them alone: a
   * release landing after the reconcile freed its address (and a new container got it) would free it again.
   */
  inFlightSubnets(): ReadonlySet<string> {
    const subnets = new Set(this.requesting.keys());
    for (const poolId of this.ahead.pools()) subnets.add(formatSubnet(parsePoolId(poolId).subnet));
    return subnets;
  }

  async requestAddress(input: RequestAddressInput): Promise<RequestAddressResult> {
    let subnet: string | undefined;
    try {
      const ref = parsePoolId(input.poolId);
      subnet = formatSubnet(ref.subnet);
      this.requesting.set(subnet, (this.requesting.get(subnet) ?? 0) + 1);
      // The address asked for, or the one this name parked, may be in a release still landing.
      if (input.address !== '' || input.endpointName)
        await this.ahead.landed(input.poolId, input.address !== '' ? input.address : undefined);
      let address: string;
      if (input.kind !== 'container') {
        address = await this.addresses.reserve(
          ref,
          input.poolId,
          input.kind,
          input.address,
          input.kind === 'gateway' || input.declared === true,
        );
      } else {
        const meta: AssignmentMeta = {};
        if (input.macAddress) meta.macAddress = input.macAddress;
        if (input.endpointName) meta.endpointName = input.endpointName;
        // A name's parked address comes back before a fresh one is chosen (Docker 29+ sends the name).
        const parked =
          input.address === '' && input.endpointName
            ? await this.allocator.reclaimForName(ref, input.poolId, { ...meta, endpointName: input.endpointName })
            : undefined;
        address =
          input.address !== ''
            ? await this.addresses.requestSpecific(ref, input.poolId, input.address, meta)
            : `${parked ?? (await this.allocations.submit(input.poolId, meta))}/${ref.subnet.prefix}`;
      }
      allocations.inc({ kind: input.kind });
      if (input.kind === 'container') this.onAllocated?.(input.poolId);
      return { address };
    } catch (err) {
      allocationFailures.inc({ reason: err instanceof FlatnetError ? err.kind : 'internal' });
      this.logger.info(
        { poolId: input.poolId, kind: input.kind, err: (err as Error).message },
        'address request refused',
      );
      throw err;
    } finally {
      if (subnet !== undefined) {
        const n = (this.requesting.get(subnet) ?? 1) - 1;
        if (n > 0) this.requesting.set(subnet, n);
        else this.requesting.delete(subnet);
      }
    }
  }

  async declareAux(pool: string, addresses: readonly string[]): Promise<void> {
    if (addresses.length === 0) return;
    await this.addresses.declareAux(parsePoolId(pool), addresses);
  }

  /**
   * Frees the address, or journals the release when etcd cannot be reached (Docker's container is gone either
   * way); with releaseAfterReply, answers once it is journaled (see ReleasesAhead).
   */
  async releaseAddress(poolId: string, address: string): Promise<void> {
    const at = new Date().toISOString();
    const ref = parsePoolId(poolId);
    const offset = offsetInPool(ref, address);
    if (offset === undefined) return;
    await this.ahead.release({ op: 'address', poolId, address: addressAt(ref.subnet, offset), at }, ref, offset);
  }

  private async commitRelease(ref: PoolRef, poolId: string, offset: bigint): Promise<void> {
    let outcome: ContainerRelease | 'reservation' = await this.releases.submit(`${poolId}#${blockOf(offset)}`, {
      ref,
      poolId,
      offset,
    });
    if (outcome === 'not-assigned')
      outcome = await this.addresses.releaseReservation(ref, addressAt(ref.subnet, offset));
    if (outcome !== 'none') releases.inc();
  }

  /** Waits for every release answered and still landing (shutdown); one that cannot reach etcd stays journaled. */
  settleReleases(): Promise<void> {
    return this.ahead.settle();
  }

  /**
   * Lands one journaled release. An address is freed only if this host still holds it with an assignment made
   * before the release was asked for. A pool entry drops the very claim its release had chosen when it got that far
   * (its write may have applied with the answer lost: then nothing is left to drop), else the newest claim made
   * before the release was asked for; once this host's releases in the pool landed, as a live ReleasePool waits.
   *
   * An address with no assignment was a gateway/aux reference, or was freed already: a replay never drops a
   * reference. Dropping one is not safe to repeat (the entry may have landed already: its commit's answer lost,
   * or the process killed before the entry went), and a second drop would free the LAN's gateway while another
   * network of this host still uses it. A reference left behind goes with this host's last claim on the pool.
   */
  async replay(entry: JournalEntry): Promise<void> {
    if (entry.op === 'pool') {
      await this.ahead.landed(entry.poolId);
      await this.pools.releasePool(
        entry.poolId,
        entry.claimSince !== undefined ? { exactly: entry.claimSince } : { notAfter: entry.at },
      );
      return;
    }
    const ref = parsePoolId(entry.poolId);
    const offset = offsetInPool(ref, entry.address);
    if (offset === undefined) return;
    const view = await this.stores.blocks.read(ref.subnet, blockOf(offset), [entry.address]);
    if (view?.assignments.get(entry.address) === undefined) return;
    await releaseWhere(
      this.stores,
      [
        {
          ref,
          offset,
          accept: (h) => h !== 'unreadable' && h.assignment.hostId === this.hostId && h.assignment.since <= entry.at,
        },
      ],
      this.cooling,
    );
  }

  /** Replays the journal (at start and periodically, see the heal agent). */
  drainJournal(): Promise<DrainResult> | undefined {
    return this.ahead.drain((e) => this.replay(e));
  }
}

/** The IPAM over a set of stores: the driver for the plugin API and the admin for CLI and metrics. */
export function createIpam(
  stores: IpamStores,
  hostId: string,
  logger: Logger,
  options: IpamDriverOptions = {},
): { driver: IpamDriverService; admin: IpamAdminService } {
  return {
    driver: new IpamDriverService(stores, hostId, logger.child({ component: 'ipam' }), options),
    admin: new IpamAdminService(stores, logger.child({ component: 'ipam-admin' }), options.cooling),
  };
}
