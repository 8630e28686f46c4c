import { errorMessage, FlatnetError } from '../../errors.js';
import { addressAt, formatSubnet, subnetContains, tryParseAddress } from '../../net/address.js';
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
import { isUnavailable, type JournalEntry, type ReleaseJournal } from './release-journal.js';

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
  private readonly journal: ReleaseJournal | undefined;
  private readonly releaseAfterReply: boolean;
  /**
   * Releases answered whose txn still runs, per pool and address: a request that could want that address back
   * (a given address, a name's parked one) and a ReleasePool wait for them; nothing else does.
   */
  private readonly pendingReleases = new Map<string, Map<string, Promise<void>>>();
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
    this.journal = options.journal;
    this.releaseAfterReply = options.releaseAfterReply === true && options.journal !== undefined;
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
    await this.releasesLanded(poolId);
    // The claim the release chose: its journal entry names it, so that a replay after a write that applied with
    // its answer lost drops nothing more (a host with two networks on the pool would lose the other one's claim).
    let chosen: string | undefined;
    try {
      await this.pools.releasePool(poolId, { chose: (since) => (chosen = since) });
    } catch (err) {
      if (!this.journal || !isUnavailable(err)) throw err;
      await this.journalOrThrow(
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
    for (const poolId of this.pendingReleases.keys()) subnets.add(formatSubnet(parsePoolId(poolId).subnet));
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
        await this.releasesLanded(input.poolId, input.address !== '' ? input.address : undefined);
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
   * way; the journal lands it later, see release-journal.ts). With releaseAfterReply, the journal entry comes
   * first and the txn after the reply; the entry goes once the txn landed, and stays for the journal's replay
   * when it could not (etcd away, or this process killed meanwhile).
   */
  async releaseAddress(poolId: string, address: string): Promise<void> {
    const at = new Date().toISOString();
    const ref = parsePoolId(poolId);
    const offset = offsetInPool(ref, address);
    if (offset === undefined) return;
    const entry: JournalEntry = { op: 'address', poolId, address: addressAt(ref.subnet, offset), at };
    const journal = this.journal;
    if (this.releaseAfterReply && journal !== undefined) {
      const added = journal.add(entry).then(
        () => true,
        (err: unknown) => {
          this.logger.warn(
            { entry, error: errorMessage(err) },
            'could not journal a release; releasing before the reply',
          );
          return false;
        },
      );
      // Registered before the entry is written, so that no journal replay takes it for a forgotten one.
      this.trackLanding(poolId, entry.address, (before) => this.land(entry, ref, offset, journal, added, before));
      if (await added) return;
    }
    // No journal entry, no answer before the txn: without a journal or a written entry, the release comes first.
    try {
      await this.commitRelease(ref, poolId, offset);
    } catch (err) {
      if (!journal || !isUnavailable(err)) throw err;
      await this.journalOrThrow(entry, err);
    }
  }

  /**
   * The txn of a release already answered. A request waiting for it resumes once the txn landed; the journal
   * entry goes after that. Any failure keeps the entry for the journal's replay (which frees the address only
   * if this host still holds it from before the release).
   */
  private async land(
    entry: JournalEntry & { op: 'address' },
    ref: PoolRef,
    offset: bigint,
    journal: ReleaseJournal,
    added: Promise<boolean>,
    before: Promise<void> | undefined,
  ): Promise<void> {
    if (!(await added)) return;
    await before;
    try {
      await this.commitRelease(ref, entry.poolId, offset);
    } catch (err) {
      this.logger.warn(
        { entry, error: errorMessage(err) },
        isUnavailable(err)
          ? 'etcd unreachable: release journaled, retried in the background'
          : 'release failed after its reply; kept in the journal for its replay',
      );
      return;
    }
    void journal
      .remove(entry)
      .catch((err: unknown) =>
        this.logger.warn(
          { entry, error: errorMessage(err) },
          'could not drop a landed release from the journal (its replay changes nothing)',
        ),
      );
  }

  /** Runs one landing per address at a time, in order, and keeps it findable until it is done. */
  private trackLanding(
    poolId: string,
    address: string,
    run: (before: Promise<void> | undefined) => Promise<void>,
  ): void {
    const byAddress = this.pendingReleases.get(poolId) ?? new Map<string, Promise<void>>();
    this.pendingReleases.set(poolId, byAddress);
    const landing = run(byAddress.get(address));
    byAddress.set(address, landing);
    void landing.finally(() => {
      if (byAddress.get(address) === landing) byAddress.delete(address);
      if (byAddress.size === 0 && this.pendingReleases.get(poolId) === byAddress) this.pendingReleases.delete(poolId);
    });
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

  /** Waits for the pool's releases still landing (of one address, when given); never throws. */
  private async releasesLanded(poolId: string, address?: string): Promise<void> {
    const byAddress = this.pendingReleases.get(poolId);
    if (byAddress === undefined) return;
    if (address === undefined) {
      await Promise.all(byAddress.values());
      return;
    }
    // Keys are canonical addresses (an IPv6 address may come written another way).
    const ref = parsePoolId(poolId);
    const parsed = tryParseAddress(address);
    if (parsed === undefined || !subnetContains(ref.subnet, parsed.family, parsed.value)) return;
    await byAddress.get(addressAt(ref.subnet, parsed.value - ref.subnet.network));
  }

  /** A journal entry whose release is landing right now (the journal's replay leaves it to that). */
  private isLanding(entry: JournalEntry): boolean {
    return entry.op === 'address' && this.pendingReleases.get(entry.poolId)?.has(entry.address) === true;
  }

  /** Waits for every release answered and still landing (shutdown); one that cannot reach etcd stays journaled. */
  async settleReleases(): Promise<void> {
    while (this.pendingReleases.size > 0)
      await Promise.all([...this.pendingReleases.values()].flatMap((m) => [...m.values()]));
  }

  private async journalOrThrow(entry: JournalEntry, cause: unknown): Promise<void> {
    try {
      await (this.journal as ReleaseJournal).add(entry);
    } catch (err) {
      this.logger.error({ entry, error: errorMessage(err) }, 'could not journal a release');
      throw cause;
    }
    this.logger.warn(
      { entry, error: errorMessage(cause) },
      'etcd unreachable: release journaled, retried in the background',
    );
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
      await this.releasesLanded(entry.poolId);
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

  /** Replays the journal (at start and periodically, see server.ts). */
  drainJournal(): Promise<{ landed: number; left: number }> | undefined {
    return this.journal?.drain(
      (e) => this.replay(e),
      (e) => this.isLanding(e),
    );
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
