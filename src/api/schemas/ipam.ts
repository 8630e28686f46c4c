import { z } from 'zod';
import type { RequestPoolInput } from '../../ipam/contract.js';
import { cidrOrEmpty, ipOrEmpty, poolId, releasedIp, stringMap } from './wire-formats.js';

export const requestPoolBody = z
  .object({
    AddressSpace: z.string({ error: 'expected an address space name' }),
    Pool: cidrOrEmpty.optional().default(''),
    SubPool: cidrOrEmpty.optional().default(''),
    Options: stringMap,
    V6: z.boolean({ error: 'expected true or false' }).nullable().optional().default(false),
  })
  .transform((b): RequestPoolInput => ({
    addressSpace: b.AddressSpace,
    pool: b.Pool,
    subPool: b.SubPool,
    options: b.Options,
    v6: b.V6 ?? false,
  }));

export const releasePoolBody = z.object({ PoolID: poolId }).transform((b) => ({ poolId: b.PoolID }));

/** Kept apart from the contract's RequestAddressInput: the kind is decided with state the schema cannot see. */
export const requestAddressBody = z
  .object({
    PoolID: poolId,
    Address: ipOrEmpty.optional().default(''),
    Options: stringMap,
  })
  .transform((b) => ({ poolId: b.PoolID, address: b.Address, options: b.Options }));
export type RequestAddressBody = z.output<typeof requestAddressBody>;

export const releaseAddressBody = z
  .object({ PoolID: poolId, Address: releasedIp })
  .transform((b) => ({ poolId: b.PoolID, address: b.Address }));
