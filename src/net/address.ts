import { Address4, Address6 } from 'ip-address';
import { FlatnetError } from '../errors.js';

/**
 * Address arithmetic over bigint so that IPv4 and IPv6 share one code path: a pool works in offsets from its
 * network address, and only the edges (parsing, formatting) know the family.
 */
export type Family = 4 | 6;

export interface Subnet {
  family: Family;
  /** The network address as an integer. */
  network: bigint;
  prefix: number;
  /** Address bits below the prefix (32 - prefix or 128 - prefix). */
  hostBits: number;
  /** Number of addresses in the subnet. */
  size: bigint;
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Parses a plain address (no prefix); undefined when it is not one. */
export function tryParseAddress(text: string): { family: Family; value: bigint } | undefined {
  const s = text.trim();
  if (s.includes('/') || s.length === 0) return undefined;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s) && Address4.isValid(s)) return { family: 4, value: new Address4(s).bigInt() };
  if (s.includes(':') && !s.includes('%') && Address6.isValid(s)) {
    const a = new Address6(s);
    if (a.subnetMask !== 128) return undefined;
    return { family: 6, value: a.bigInt() };
  }
  return undefined;
}

export function parseAddress(text: string): { family: Family; value: bigint } {
  const parsed = tryParseAddress(text);
  if (!parsed) throw new FlatnetError('invalid', `"${text}" is not an IPv4 or IPv6 address.`);
  return parsed;
}

export function formatAddress(family: Family, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
}

/** Splits "addr/prefix" when it is one (prefix within the family's bits); undefined otherwise. */
export function tryParseCidr(text: string): { family: Family; value: bigint; prefix: number } | undefined {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const addr = tryParseAddress(m[1] as string);
  const prefix = Number(m[2]);
  if (!addr || prefix > familyBits(addr.family)) return undefined;
  return { ...addr, prefix };
}

/** The one CIDR rule: the plugin API's schemas, the CLI flags and the IPAM all accept exactly these. */
export function isCidr(text: string): boolean {
  return text === text.trim() && tryParseCidr(text) !== undefined;
}

/** A plain address (no prefix, no zone, no surrounding spaces). */
export function isPlainIp(text: string): boolean {
  return text === text.trim() && tryParseAddress(text) !== undefined;
}

/**
 * "10.0.0.5/24" -> "10.0.0.5"; a plain address as it is; '' for '' (Docker's "none"). Throws 'invalid' on
 * anything else, and when `family` is given, on an address of the other family.
 */
export function bareAddress(text: string, family?: Family): string {
  if (text === '') return '';
  const parsed = tryParseCidr(text) ?? tryParseAddress(text);
  if (!parsed || text !== text.trim())
    throw new FlatnetError('invalid', `"${text}" is not an IP address (optionally with /prefix).`);
  if (family !== undefined && parsed.family !== family)
    throw new FlatnetError('invalid', `"${text}" is not an IPv${family} address.`);
  const slash = text.indexOf('/');
  return slash < 0 ? text : text.slice(0, slash);
}

/** Parses "addr/prefix" into the subnet it names (host bits are dropped: 10.0.0.5/24 is 10.0.0.0/24). */
export function parseSubnet(text: string): Subnet {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) throw new FlatnetError('invalid', `"${text}" is not a subnet in CIDR form such as 10.20.0.0/24.`);
  const addr = parseAddress(m[1] as string);
  const prefix = Number(m[2]);
  const bits = familyBits(addr.family);
  if (prefix > bits) throw new FlatnetError('invalid', `"${text}" has a prefix length above ${bits}.`);
  return subnetOf(addr.family, addr.value, prefix);
}

export function subnetOf(family: Family, value: bigint, prefix: number): Subnet {
  const hostBits = familyBits(family) - prefix;
  const size = 1n << BigInt(hostBits);
  return { family, network: value - (value % size), prefix, hostBits, size };
}

export function formatSubnet(s: Subnet): string {
  return `${formatAddress(s.family, s.network)}/${s.prefix}`;
}

export function subnetContains(s: Subnet, family: Family, value: bigint): boolean {
  return family === s.family && value >= s.network && value < s.network + s.size;
}

export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  if (a.family !== b.family) return false;
  return a.network < b.network + b.size && b.network < a.network + a.size;
}

/** Offset of an address inside the subnet; throws 'invalid' when it lies outside. */
export function offsetIn(s: Subnet, text: string): bigint {
  const a = parseAddress(text);
  if (!subnetContains(s, a.family, a.value)) {
    throw new FlatnetError('invalid', `${text} is not inside ${formatSubnet(s)}.`);
  }
  return a.value - s.network;
}

export function addressAt(s: Subnet, offset: bigint): string {
  return formatAddress(s.family, s.network + offset);
}

/** The address with the pool's prefix length, as Docker wants it in replies. */
export function cidrAt(s: Subnet, offset: bigint): string {
  return `${addressAt(s, offset)}/${s.prefix}`;
}
