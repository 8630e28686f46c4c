/**
 * Who holds the IPAM's addresses, as the network driver learns it. Called on the plugin call's path, so an
 * implementation only schedules its work (after the reply) and never throws.
 */
export interface EndpointOwnerHook {
  created(e: { networkId: string; endpointId: string; addresses: string[] }): void;
  joined(networkId: string, endpointId: string): void;
  /** DeleteEndpoint: the endpoint's address is no longer held through it. */
  removed(endpointId: string): void;
}
