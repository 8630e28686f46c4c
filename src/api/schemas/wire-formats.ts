import { isIP } from 'node:net';
import { z } from 'zod';

/** Pure shape checks for the address strings Docker sends; the IPAM driver decides what they mean. */
export function isPlainIp(s: string): boolean {
  return isIP(s) !== 0;
}

export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash <= 0) return false;
  const ip = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(len)) return false;
  return Number(len) <= (family === 4 ? 32 : 128);
}

/** Docker IDs are 64 hex digits; this also keeps IDs safe as file and interface name material (no '/', '..'). */
export const dockerId = z
  .string({ error: 'expected a Docker ID string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, { error: 'expected a Docker ID (letters, digits, _ or -)' });

/** PoolIDs are flatnet's own opaque strings; only printable ASCII without spaces can be one. */
export const poolId = z
  .string({ error: 'expected a PoolID string' })
  .regex(/^[\x21-\x7e]{1,256}$/, { error: 'expected a non-empty PoolID as returned by RequestPool' });

export const cidrOrEmpty = z
  .string({ error: 'expected a CIDR string' })
  .refine((s) => s === '' || isCidr(s), { error: 'expected a CIDR such as 10.20.0.0/24, or ""' });

export const cidr = z.string({ error: 'expected a CIDR string' }).refine(isCidr, { error: 'expected a CIDR such as 10.20.0.1/24' });

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
