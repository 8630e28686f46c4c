import { GLOBAL_ADDRESS_SPACE, IPAM_CAPABILITIES, LOCAL_ADDRESS_SPACE, type IpamDriver } from '../ipam/contract.js';
import {
  addressKind,
  declaredAux,
  ENDPOINT_NAME_OPTION,
  MAC_ADDRESS_OPTION,
  PoolCreationWindows,
} from './address-kind.js';
import { bodyRoute, constantRoute, type PluginRoute } from './plugin-route.js';
import { releaseAddressBody, releasePoolBody, requestAddressBody, requestPoolBody } from './schemas/ipam.js';

export function ipamRoutes(ipam: IpamDriver, windows: PoolCreationWindows): PluginRoute[] {
  return [
    constantRoute('IpamDriver.GetCapabilities', IPAM_CAPABILITIES),
    constantRoute('IpamDriver.GetDefaultAddressSpaces', {
      LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE,
      GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE,
    }),
    bodyRoute('IpamDriver.RequestPool', requestPoolBody, async (input, fields) => {
      fields.pool = input.pool || undefined;
      fields.sub_pool = input.subPool || undefined;
      fields.v6 = input.v6;
      const declared = declaredAux(input.options);
      const result = await ipam.requestPool(input);
      fields.pool_id = result.poolId;
      fields.pool = result.pool;
      windows.opened(result.poolId, result.pool, declared);
      return { PoolID: result.poolId, Pool: result.pool, Data: result.data };
    }),
    bodyRoute('IpamDriver.ReleasePool', releasePoolBody, async (input, fields) => {
      fields.pool_id = input.poolId;
      await ipam.releasePool(input.poolId);
      windows.released(input.poolId);
      return {};
    }),
    bodyRoute('IpamDriver.RequestAddress', requestAddressBody, async (input, fields) => {
      const declared = windows.declaredFor(input.poolId);
      const kind = addressKind({
        address: input.address,
        options: input.options,
        poolInCreation: windows.isOpen(input.poolId),
        declared,
      });
      const macAddress = input.options[MAC_ADDRESS_OPTION];
      const endpointName = input.options[ENDPOINT_NAME_OPTION];
      fields.pool_id = input.poolId;
      fields.kind = kind;
      fields.requested = input.address || undefined;
      fields.endpoint_name = endpointName;
      const result = await ipam.requestAddress({
        poolId: input.poolId,
        address: input.address,
        kind,
        ...(macAddress !== undefined && macAddress !== '' ? { macAddress } : {}),
        ...(endpointName !== undefined && endpointName !== '' ? { endpointName } : {}),
        ...(kind === 'aux' && declared !== undefined ? { declared: true } : {}),
      });
      fields.address = result.address;
      if (kind !== 'container') windows.touched(input.poolId);
      return { Address: result.address, Data: {} };
    }),
    bodyRoute('IpamDriver.ReleaseAddress', releaseAddressBody, async (input, fields) => {
      fields.pool_id = input.poolId;
      fields.address = input.address;
      await ipam.releaseAddress(input.poolId, input.address);
      return {};
    }),
  ];
}
