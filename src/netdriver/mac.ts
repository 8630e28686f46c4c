import { createHash } from 'node:crypto';
import { Address4, Address6 } from 'ip-address';

/**
 * Locally administered, unicast (0x0a: bit 1 set, bit 0 clear). IPv4-derived MACs embed the address, so
 * they are unique wherever addresses are unique (cluster-wide) and a container keeps its MAC when its
 * address moves host: neighbours' ARP caches stay right. Hash-derived MACs use another second byte so
 * they can never equal an IPv4-derived one.
 */
export const IPV4_MAC_PREFIX = [0x0a, 0x66] as const;
export const HASH_MAC_PREFIX = [0x0a, 0x67] as const;

function render(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** `0a:66:` + the four address bytes; accepts a bare IPv4 address or CIDR. */
export function macFromIPv4(address: string): string {
  const a = new Address4(address);
  return render([...IPV4_MAC_PREFIX, ...a.toArray()]);
}

/** `0a:67:` + four bytes of SHA-256 of the seed (an IPv6 address in canonical form, or an endpoint id). */
export function macFromHash(seed: string): string {
  const digest = createHash('sha256').update(seed).digest();
  return render([...HASH_MAC_PREFIX, ...digest.subarray(0, 4)]);
}

/** The MAC flatnet gives an endpoint Docker sent without one. */
export function deriveEndpointMac(addressCidr: string, addressIPv6Cidr: string, endpointId: string): string {
  if (addressCidr !== '') return macFromIPv4(addressCidr);
  if (addressIPv6Cidr !== '') return macFromHash(new Address6(addressIPv6Cidr).correctForm());
  return macFromHash(endpointId);
}
