import { FlatnetError } from '../../errors.js';
import { addressAt } from '../../net/address.js';
import type { Logger } from '../../observability/logger.js';
import { allocationFailures, allocations, releases } from '../../observability/metrics.js';
import { GroupCommit } from '../../util/group-commit.js';
import { blockOf } from '../core/bitmap.js';
import type { ContainerRelease } from '../core/block-ops.js';
import { parsePoolId, type PoolRef } from '../core/pool-id.js';
import type { IpamDriver, RequestAddressInput, RequestAddressResult, RequestPoolInput, RequestPoolResult } from '../contract.js';
import type { IpamStores } from '../ports.js';
import { AddressService, offsetInPool } from './address-service.js';
import { AllocationService, type AssignmentMeta, COOLING_OFF, type CoolingOptions } from './allocation-service.js';
import { IpamAdminService } from './admin-service.js';
import { PoolService } from './pool-service.js';

/** Below etcd's default limit of 128 operations per txn (one put per address plus block and summaries). */
const MAX_BATCH = 100;
/** How long a batch may wait for callers the last one served (see GroupCommit); small beside a docker run. */
const GATHER_MS = 2;

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

  constructor(
    stores: IpamStores,
    hostId: string,
    private readonly logger: Logger,
    cooling: CoolingOptions = COOLING_OFF,
  ) {
    this.pools = new PoolService(stores.pools, hostId, logger);
    this.addresses = new AddressService(stores, hostId, logger, cooling);
    this.allocator = new AllocationService(stores.blocks, stores.retry, hostId, cooling);
    const batching = { maxBatch: MAX_BATCH, gatherMs: GATHER_MS };
    this.allocations = new GroupCommit((poolId, metas) => this.allocator.allocate(parsePoolId(poolId), poolId, metas), batching);
    // Releases are batched per block: one read and one commit free every address of the block that queued up.
    this.releases = new GroupCommit(
      (_key, requests) => {
        const { ref, poolId } = requests[0] as ReleaseRequest;
        return this.addresses.releaseContainers(ref, poolId, requests.map((r) => r.offset));
      },
      batching,
    );
  }

  requestPool(input: RequestPoolInput): Promise<RequestPoolResult> {
    return this.pools.requestPool(input);
  }

  releasePool(poolId: string): Promise<void> {
    return this.pools.releasePool(poolId);
  }

  async requestAddress(input: RequestAddressInput): Promise<RequestAddressResult> {
    try {
      const ref = parsePoolId(input.poolId);
      let address: string;
      if (input.kind !== 'container') {
        address = await this.addresses.reserve(ref, input.poolId, input.kind, input.address);
      } else {
        const meta: AssignmentMeta = {};
        if (input.macAddress) meta.macAddress = input.macAddress;
        if (input.endpointName) meta.endpointName = input.endpointName;
        // A name's parked address comes back before a fresh one is chosen (Docker 29+ sends the name).
        const parked = input.address === '' && input.endpointName ? await this.allocator.reclaimForName(ref, input.poolId, { ...meta, endpointName: input.endpointName }) : undefined;
        address = input.address !== ''
          ? await this.addresses.requestSpecific(ref, input.poolId, input.address, meta)
          : `${parked ?? (await this.allocations.submit(input.poolId, meta))}/${ref.subnet.prefix}`;
      }
      allocations.inc({ kind: input.kind });
      return { address };
    } catch (err) {
      allocationFailures.inc({ reason: err instanceof FlatnetError ? err.kind : 'internal' });
      this.logger.info({ poolId: input.poolId, kind: input.kind, err: (err as Error).message }, 'address request refused');
      throw err;
    }
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    const ref = parsePoolId(poolId);
    const offset = offsetInPool(ref, address);
    if (offset === undefined) return;
    let outcome: ContainerRelease | 'reservation' = await this.releases.submit(`${poolId}#${blockOf(offset)}`, { ref, poolId, offset });
    if (outcome === 'not-assigned') outcome = await this.addresses.releaseReservation(ref, addressAt(ref.subnet, offset));
    if (outcome !== 'none') releases.inc();
  }
}

/** The IPAM over a set of stores: the driver for the plugin API and the admin for CLI and metrics. */
export function createIpam(stores: IpamStores, hostId: string, logger: Logger, cooling: CoolingOptions = COOLING_OFF): { driver: IpamDriverService; admin: IpamAdminService } {
  return {
    driver: new IpamDriverService(stores, hostId, logger.child({ component: 'ipam' }), cooling),
    admin: new IpamAdminService(stores, logger.child({ component: 'ipam-admin' })),
  };
}
