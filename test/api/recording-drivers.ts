import type {
  IpamDriver,
  RequestAddressInput,
  RequestAddressResult,
  RequestPoolInput,
  RequestPoolResult,
} from '../../src/ipam/contract.js';
import type {
  CreateEndpointInput,
  CreateEndpointResult,
  CreateNetworkInput,
  JoinInput,
  JoinResult,
  NetworkDriver,
} from '../../src/netdriver/network-driver.js';

/**
 * Doubles that only record what the API layer handed them and return canned answers. They test the wire
 * mapping (names, casing, nulls), not driver behaviour: that is the drivers' own tests, against etcd and netns.
 */
export interface RecordedCall {
  method: string;
  args: unknown[];
}

export class RecordingIpam implements IpamDriver {
  readonly calls: RecordedCall[] = [];
  poolResult: RequestPoolResult = { poolId: 'FlatLocal/10.20.0.0/24', pool: '10.20.0.0/24', data: {} };
  addressResult: RequestAddressResult = { address: '10.20.0.7/24' };
  failWith: Error | undefined;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith) throw this.failWith;
  }
  async requestPool(input: RequestPoolInput): Promise<RequestPoolResult> {
    this.record('requestPool', input);
    return this.poolResult;
  }
  async releasePool(poolId: string): Promise<void> {
    this.record('releasePool', poolId);
  }
  async requestAddress(input: RequestAddressInput): Promise<RequestAddressResult> {
    this.record('requestAddress', input);
    return this.addressResult;
  }
  async releaseAddress(poolId: string, address: string): Promise<void> {
    this.record('releaseAddress', poolId, address);
  }
  async declareAux(pool: string, addresses: readonly string[]): Promise<void> {
    this.record('declareAux', pool, addresses);
  }
}

export class RecordingNetwork implements NetworkDriver {
  readonly calls: RecordedCall[] = [];
  endpointResult: CreateEndpointResult = { interface: null };
  joinResult: JoinResult = {
    srcName: 'fn0123456789a',
    dstPrefix: 'eth',
    gateway: '10.20.0.1',
    gatewayIPv6: '',
    staticRoutes: [],
    disableGatewayService: false,
  };
  failWith: Error | undefined;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith) throw this.failWith;
  }
  async createNetwork(input: CreateNetworkInput): Promise<void> {
    this.record('createNetwork', input);
  }
  async deleteNetwork(networkId: string): Promise<void> {
    this.record('deleteNetwork', networkId);
  }
  async createEndpoint(input: CreateEndpointInput): Promise<CreateEndpointResult> {
    this.record('createEndpoint', input);
    return this.endpointResult;
  }
  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    this.record('deleteEndpoint', networkId, endpointId);
  }
  async endpointOperInfo(networkId: string, endpointId: string): Promise<Record<string, unknown>> {
    this.record('endpointOperInfo', networkId, endpointId);
    return {};
  }
  async join(input: JoinInput): Promise<JoinResult> {
    this.record('join', input);
    return this.joinResult;
  }
  async leave(networkId: string, endpointId: string): Promise<void> {
    this.record('leave', networkId, endpointId);
  }
}
