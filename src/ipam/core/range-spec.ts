import { FlatnetError } from '../../errors.js';
import { type Family, parseAddress, type Subnet, subnetContains, subnetOf, formatSubnet } from '../../net/address.js';

/**
 * Range arguments in the oam-docker-ipam style: `192.168.0.100/24` names both the address and, through the
 * prefix length, the pool's subnet. The prefix may be given on either end or both (then they must agree).
 */
export interface ParsedRange {
  family: Family;
  start: bigint;
  end: bigint;
  /** The subnet named by a prefix length, when one was given. */
  subnet?: Subnet;
}

function splitEnd(text: string, what: string): { family: Family; value: bigint; prefix?: number } {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) throw new FlatnetError('invalid', `The range ${what} "${text}" is not an address (optionally with /prefix).`);
  const a = parseAddress(m[1] as string);
  if (m[2] === undefined) return a;
  const prefix = Number(m[2]);
  if (prefix > (a.family === 4 ? 32 : 128))
    throw new FlatnetError('invalid', `The range ${what} "${text}" has a bad prefix length.`);
  return { ...a, prefix };
}

export function parseRangeSpec(startText: string, endText: string): ParsedRange {
  const s = splitEnd(startText, 'start');
  const e = splitEnd(endText, 'end');
  if (s.family !== e.family) throw new FlatnetError('invalid', 'The range start and end are of different IP families.');
  if (s.value > e.value) throw new FlatnetError('invalid', `The range start ${startText} is after its end ${endText}.`);
  if (s.prefix !== undefined && e.prefix !== undefined && s.prefix !== e.prefix) {
    throw new FlatnetError('invalid', 'The range start and end carry different prefix lengths.');
  }
  const prefix = s.prefix ?? e.prefix;
  const out: ParsedRange = { family: s.family, start: s.value, end: e.value };
  if (prefix === undefined) return out;
  const subnet = subnetOf(s.family, s.value, prefix);
  if (!subnetContains(subnet, e.family, e.value)) {
    throw new FlatnetError('invalid', `The range end ${endText} is outside ${formatSubnet(subnet)}.`);
  }
  return { ...out, subnet };
}
