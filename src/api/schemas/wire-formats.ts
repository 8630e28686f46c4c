import { z } from 'zod';
import { isCidr, isPlainIp } from '../../net/address.js';
import { DOCKER_ID, MAC_ADDRESS } from '../../net/ids.js';

/** Shape checks for the address strings Docker sends, with the one parser of src/net; the IPAM decides what they mean. */
export { isCidr, isPlainIp };

/** Docker IDs are 64 hex digits; this also keeps IDs safe as file and interface name material (no '/', '..'). */
export const dockerId = z
  .string({ error: 'expected a Docker ID string' })
  .regex(DOCKER_ID, { error: 'expected a Docker ID (letters, digits, _ or -)' });

/** PoolIDs are flatnet's own opaque strings; only printable ASCII without spaces can be one. */
export const poolId = z
  .string({ error: 'expected a PoolID string' })
  .regex(/^[\x21-\x7e]{1,256}$/, { error: 'expected a non-empty PoolID as returned by RequestPool' });

export const cidrOrEmpty = z
  .string({ error: 'expected a CIDR string' })
  .refine((s) => s === '' || isCidr(s), { error: 'expected a CIDR such as 10.20.0.0/24, or ""' });

export const cidr = z
  .string({ error: 'expected a CIDR string' })
  .refine(isCidr, { error: 'expected a CIDR such as 10.20.0.1/24' });

export const ipOrEmpty = z
  .string({ error: 'expected an IP address string' })
  .refine((s) => s === '' || isPlainIp(s), { error: 'expected a plain IP address such as 10.20.0.7, or ""' });

/** A released address is a plain IP; a CIDR is tolerated (prefix dropped) so a lenient client cannot leak it. */
export const releasedIp = z
  .string({ error: 'expected an IP address string' })
  .transform((s) => (isCidr(s) ? s.slice(0, s.indexOf('/')) : s))
  .refine(isPlainIp, { error: 'expected a plain IP address such as 10.20.0.7' });

/** Go encodes a nil map[string]string as null. */
export const stringMap = z
  .record(z.string(), z.string(), { error: 'expected an object of string values or null' })
  .nullable()
  .optional()
  .transform((m): Record<string, string> => m ?? {});

/** Opaque option maps (map[string]interface{}): kept as sent, null becomes {}. */
export const opaqueMap = z
  .record(z.string(), z.unknown(), { error: 'expected an object or null' })
  .nullable()
  .optional()
  .transform((m): Record<string, unknown> => m ?? {});

export const macOrEmpty = z
  .string({ error: 'expected a MAC address string' })
  .refine((s) => s === '' || MAC_ADDRESS.test(s), { error: 'expected a colon-form MAC address or ""' });
