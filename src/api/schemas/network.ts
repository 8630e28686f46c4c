import { z } from 'zod';
import type { CreateEndpointInput, CreateNetworkInput, IpamData, JoinInput } from '../../netdriver/network-driver.js';
import { cidr, cidrOrEmpty, dockerId, macOrEmpty, opaqueMap } from './wire-formats.js';

const GENERIC = 'com.docker.network.generic';
const INTERNAL = 'com.docker.network.internal';
const ENABLE_IPV6 = 'com.docker.network.enable_ipv6';

/** Docker sends these flags as JSON booleans; API clients sometimes send the strings. */
const flag = z
  .union([z.boolean(), z.enum(['true', 'false'])], { error: 'expected true or false' })
  .nullable()
  .optional()
  .transform((v) => v === true || v === 'true');

/** `-o k=v` values are strings; numbers and booleans from API clients are kept as their text. */
const genericOptions = z
  .record(z.string(), z.union([z.string(), z.number(), z.boolean()]), {
    error: 'expected an object of string values or null',
  })
  .nullable()
  .optional()
  .transform((m): Record<string, string> =>
    Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, String(v)])),
  );

const networkOptions = z
  .object({ [GENERIC]: genericOptions, [INTERNAL]: flag, [ENABLE_IPV6]: flag }, { error: 'expected an object or null' })
  .passthrough()
  .nullable()
  .optional()
  .transform((o) => ({
    generic: o?.[GENERIC] ?? {},
    internal: o?.[INTERNAL] ?? false,
    enableIpv6: o?.[ENABLE_IPV6] ?? false,
  }));

const ipamData = z
  .object({
    AddressSpace: z.string({ error: 'expected an address space name' }).optional().default(''),
    Pool: cidr,
    Gateway: cidrOrEmpty.nullable().optional(),
    AuxAddresses: z.record(z.string(), cidr, { error: 'expected an object of CIDRs or null' }).nullable().optional(),
  })
  .transform((d): IpamData => ({
    addressSpace: d.AddressSpace,
    pool: d.Pool,
    ...(d.Gateway ? { gateway: d.Gateway } : {}),
    auxAddresses: d.AuxAddresses ?? {},
  }));

const ipamDataList = z
  .array(ipamData, { error: 'expected a list of IPAM data or null' })
  .nullable()
  .optional()
  .transform((l) => l ?? []);

export const createNetworkBody = z
  .object({ NetworkID: dockerId, Options: networkOptions, IPv4Data: ipamDataList, IPv6Data: ipamDataList })
  .transform((b): CreateNetworkInput => ({
    networkId: b.NetworkID,
    generic: b.Options.generic,
    internal: b.Options.internal,
    enableIpv6: b.Options.enableIpv6,
    ipv4Data: b.IPv4Data,
    ipv6Data: b.IPv6Data,
  }));

export const networkRef = z.object({ NetworkID: dockerId }).transform((b) => ({ networkId: b.NetworkID }));

export const endpointRef = z
  .object({ NetworkID: dockerId, EndpointID: dockerId })
  .transform((b) => ({ networkId: b.NetworkID, endpointId: b.EndpointID }));

const endpointInterface = z
  .object(
    {
      Address: cidrOrEmpty.nullable().optional(),
      AddressIPv6: cidrOrEmpty.nullable().optional(),
      MacAddress: macOrEmpty.nullable().optional(),
    },
    { error: 'expected an object or null' },
  )
  .nullable()
  .optional()
  .transform((i) => ({
    address: i?.Address ?? '',
    addressIPv6: i?.AddressIPv6 ?? '',
    macAddress: i?.MacAddress ?? '',
  }));

export const createEndpointBody = z
  .object({ NetworkID: dockerId, EndpointID: dockerId, Interface: endpointInterface, Options: opaqueMap })
  .transform((b): CreateEndpointInput => ({
    networkId: b.NetworkID,
    endpointId: b.EndpointID,
    interface: b.Interface,
    options: b.Options,
  }));

export const joinBody = z
  .object({
    NetworkID: dockerId,
    EndpointID: dockerId,
    SandboxKey: z.string({ error: 'expected the sandbox key path' }).optional().default(''),
    Options: opaqueMap,
  })
  .transform((b): JoinInput => ({
    networkId: b.NetworkID,
    endpointId: b.EndpointID,
    sandboxKey: b.SandboxKey,
    options: b.Options,
  }));

export const discoveryBody = z.object({
  DiscoveryType: z.number({ error: 'expected a discovery type number' }),
  DiscoveryData: z.unknown().optional(),
});
