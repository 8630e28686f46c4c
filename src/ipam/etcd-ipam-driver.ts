import type { Etcd3 } from 'etcd3';
import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { allocationFailures, allocations, releases } from '../observability/metrics.js';
import { BlockStore } from '../store/block-store.js';
import { EtcdIo } from '../store/etcd-io.js';
import { IpamKeys } from '../store/keys.js';
import { PoolStore } from '../store/pool-store.js';
import { AddressService, type ContainerRelease, offsetInPool } from './address-service.js';
import { addressAt } from './address.js';
import { blockOf } from './bitmap.js';
import { Allocator, type AssignmentMeta } from './allocator.js';
import type { IpamDriver, RequestAddressInput, RequestAddressResult, RequestPoolInput, RequestPoolResult } from './ipam-driver.js';
import { parsePoolId, type PoolRef } from './pool-id.js';
import { PoolService } from './pool-service.js';
import { RequestBatcher } from './request-batcher.js';

export interface EtcdIpamOptions {
  etcd: Etcd3;
  prefix: string;
  hostId: string;
  logger: Logger;
}

/** Below etcd's default limit of 128 operations per txn (one put per address plus block and summaries). */
const MAX_BATCH = 100;
/** How long a batch may wait for callers the last one served (see RequestBatcher); small beside a docker run. */
const GATHER_MS = 2;

interface ReleaseRequest {
  ref: PoolRef;
  poolId: string;
  offset: bigint;
}

/** The IpamDriver over etcd: wires the pool and address services and batches concurrent container requests. */
export class EtcdIpamDriver implements IpamDriver {
  private readonly pools: PoolService;
  private readonly addresses: AddressService;
  private readonly allocator: Allocator;
  private readonly batcher: RequestBatcher<AssignmentMeta, string>;
  private readonly releases: RequestBatcher<ReleaseRequest, ContainerRelease>;
  private readonly logger: Logger;

  constructor(o: EtcdIpamOptions) {
    const io = new EtcdIo(o.etcd, o.logger);
    const keys = new IpamKeys(o.prefix);
    const poolStore = new PoolStore(io, keys);
    const blockStore = new BlockStore(io, keys);
    this.logger = o.logger;
    this.pools = new PoolService(poolStore, blockStore, o.hostId, o.logger);
    this.addresses = new AddressService(poolStore, blockStore, o.hostId, o.logger);
    this.allocator = new Allocator(blockStore, o.hostId);
    const batching = { maxBatch: MAX_BATCH, gatherMs: GATHER_MS };
    this.batcher = new RequestBatcher((poolId, metas) => this.allocator.allocate(parsePoolId(poolId), poolId, metas), batching);
    // Releases are batched per block: one read and one txn free every address of the block that queued up.
    this.releases = new RequestBatcher(
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
        address = input.address !== ''
          ? await this.addresses.requestSpecific(ref, input.poolId, input.address, meta)
          : `${await this.batcher.submit(input.poolId, meta)}/${ref.subnet.prefix}`;
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
