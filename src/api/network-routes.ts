import { FlatnetError } from '../errors.js';
import type { IpamDriver } from '../ipam/contract.js';
import { bareAddress } from '../net/address.js';
import type { JoinResult, NetworkDriver } from '../netdriver/network-driver.js';
import type { PoolCreationWindows } from './address-kind.js';
import { bodyRoute, constantRoute, type PluginRoute } from './plugin-route.js';
import {
  createEndpointBody,
  createNetworkBody,
  discoveryBody,
  endpointRef,
  joinBody,
  networkRef,
} from './schemas/network.js';

/** Docker parses Join's Gateway as a bare IP; a driver handing back a CIDR must not fail the container start. */
function bareIp(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}

export function joinReply(r: JoinResult): Record<string, unknown> {
  return {
    InterfaceName: r.srcName === '' ? null : { SrcName: r.srcName, DstPrefix: r.dstPrefix },
    Gateway: bareIp(r.gateway),
    GatewayIPv6: bareIp(r.gatewayIPv6),
    StaticRoutes: r.staticRoutes.map((s) => ({
      Destination: s.destination,
      RouteType: s.routeType,
      ...(s.nextHop !== undefined && s.nextHop !== '' ? { NextHop: s.nextHop } : {}),
    })),
    DisableGatewayService: r.disableGatewayService,
  };
}

const SWARM_REFUSAL =
  'flatnet is a local-scope driver: swarm-scoped networks are not supported; create the network on each host without --scope swarm';

/** Calls that name only an endpoint: the ids go into the log line, the driver gets them plain. */
function endpointCall(
  method: string,
  run: (networkId: string, endpointId: string) => Promise<Record<string, unknown>>,
): PluginRoute {
  return bodyRoute(method, endpointRef, async (input, fields) => {
    fields.network_id = input.networkId;
    fields.endpoint_id = input.endpointId;
    return run(input.networkId, input.endpointId);
  });
}

export function networkRoutes(network: NetworkDriver, windows: PoolCreationWindows, ipam: IpamDriver): PluginRoute[] {
  const refuseSwarm = async (): Promise<never> => {
    throw new FlatnetError('invalid', SWARM_REFUSAL);
  };
  return [
    // Data scope local: no cluster store, every node keeps its own network state (and flatnet's is in etcd).
    // Connectivity global, as Docker's own macvlan/ipvlan report: the LAN reaches across hosts, and only then
    // does a swarm-scoped network join swarm's gossip, which carries service and task names between nodes.
    // Outside swarm the connectivity scope changes nothing (libnetwork reads it only for swarm networks).
    constantRoute('NetworkDriver.GetCapabilities', { Scope: 'local', ConnectivityScope: 'global' }),
    bodyRoute('NetworkDriver.CreateNetwork', createNetworkBody, async (input, fields) => {
      fields.network_id = input.networkId;
      fields.pool = [...input.ipv4Data, ...input.ipv6Data].map((d) => d.pool).join(',') || undefined;
      // The operator's --aux-address, seen here only after Docker asked for it: other hosts may now share it.
      // First, so that a failure leaves no network behind (Docker then releases the addresses and the pool).
      for (const d of [...input.ipv4Data, ...input.ipv6Data]) {
        await ipam.declareAux(
          d.pool,
          Object.values(d.auxAddresses).map((a) => bareAddress(a)),
        );
      }
      await network.createNetwork(input);
      windows.networkCreated([...input.ipv4Data, ...input.ipv6Data].map((d) => d.pool));
      return {};
    }),
    bodyRoute('NetworkDriver.DeleteNetwork', networkRef, async (input, fields) => {
      fields.network_id = input.networkId;
      await network.deleteNetwork(input.networkId);
      return {};
    }),
    bodyRoute('NetworkDriver.CreateEndpoint', createEndpointBody, async (input, fields) => {
      fields.network_id = input.networkId;
      fields.endpoint_id = input.endpointId;
      fields.address = input.interface.address || undefined;
      const result = await network.createEndpoint(input);
      fields.mac_address = result.interface?.macAddress || input.interface.macAddress || undefined;
      return { Interface: result.interface === null ? null : { MacAddress: result.interface.macAddress } };
    }),
    endpointCall('NetworkDriver.EndpointOperInfo', async (n, e) => ({ Value: await network.endpointOperInfo(n, e) })),
    endpointCall('NetworkDriver.DeleteEndpoint', async (n, e) => {
      await network.deleteEndpoint(n, e);
      return {};
    }),
    bodyRoute('NetworkDriver.Join', joinBody, async (input, fields) => {
      fields.network_id = input.networkId;
      fields.endpoint_id = input.endpointId;
      const result = await network.join(input);
      fields.src_name = result.srcName || undefined;
      fields.gateway = result.gateway || undefined;
      return joinReply(result);
    }),
    endpointCall('NetworkDriver.Leave', async (n, e) => {
      await network.leave(n, e);
      return {};
    }),
    // Docker publishes no ports for remote drivers and flatnet containers sit on the LAN itself, so there is
    // nothing to program: both calls only check the body.
    endpointCall('NetworkDriver.ProgramExternalConnectivity', async () => ({})),
    endpointCall('NetworkDriver.RevokeExternalConnectivity', async () => ({})),
    // Only sent in swarm/cluster mode, where flatnet has nothing to learn from node discovery.
    bodyRoute('NetworkDriver.DiscoverNew', discoveryBody, async () => ({})),
    bodyRoute('NetworkDriver.DiscoverDelete', discoveryBody, async () => ({})),
    { method: 'NetworkDriver.AllocateNetwork', run: refuseSwarm },
    { method: 'NetworkDriver.FreeNetwork', run: refuseSwarm },
  ];
}
