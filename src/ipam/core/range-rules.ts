import { FlatnetError } from '../../errors.js';
import { addressAt, formatSubnet, offsetIn, type Subnet } from '../../net/address.js';
import { type Interval, overlaps } from '../../net/intervals.js';
import type { IpRangeRecord, PoolConfig } from '../model/records.js';
import { interval } from './pool-rules.js';

/** Operator changes to a pool's ranges and host ranges, as pure functions over its config. */
export function addRange(
  c: PoolConfig,
  subnet: Subnet,
  r: Interval,
  now: string,
): { config: PoolConfig; range: IpRangeRecord } {
  for (const existing of c.ranges) {
    const e = interval(subnet, existing.start, existing.end);
    if (e.start === r.start && e.end === r.end && existing.origin === 'admin') return { config: c, range: existing };
    if (overlaps(e, r)) {
      throw new FlatnetError(
        'conflict',
        `The range overlaps ${existing.start}-${existing.end} (${existing.origin}) in ${formatSubnet(subnet)}.`,
      );
    }
  }
  const range: IpRangeRecord = {
    start: addressAt(subnet, r.start),
    end: addressAt(subnet, r.end),
    origin: 'admin',
    createdAt: now,
  };
  return { config: { ...c, ranges: [...c.ranges, range] }, range };
}

function sameSpan(subnet: Subnet, rec: { start: string; end: string }, r: Interval): boolean {
  return offsetIn(subnet, rec.start) === r.start && offsetIn(subnet, rec.end) === r.end;
}

export function removeRange(c: PoolConfig, subnet: Subnet, r: Interval): PoolConfig {
  const ranges = c.ranges.filter((x) => !sameSpan(subnet, x, r));
  if (ranges.length === c.ranges.length) {
    throw new FlatnetError(
      'not-found',
      `${formatSubnet(subnet)} has no range ${addressAt(subnet, r.start)}-${addressAt(subnet, r.end)}.`,
    );
  }
  return { ...c, ranges };
}

export function addHostRange(
  c: PoolConfig,
  subnet: Subnet,
  r: Interval,
  gateway: string | undefined,
  now: string,
): PoolConfig {
  const clash = c.hostRanges.find((h) => overlaps(interval(subnet, h.start, h.end), r) && !sameSpan(subnet, h, r));
  if (clash)
    throw new FlatnetError(
      'conflict',
      `The host range overlaps ${clash.start}-${clash.end} in ${formatSubnet(subnet)}.`,
    );
  const next = { ...c, hostRanges: c.hostRanges.filter((h) => !sameSpan(subnet, h, r)) };
  next.hostRanges.push({ start: addressAt(subnet, r.start), end: addressAt(subnet, r.end), createdAt: now });
  if (gateway !== undefined) next.gateway = addressAt(subnet, offsetIn(subnet, gateway));
  return next;
}

export function removeHostRange(c: PoolConfig, subnet: Subnet, r: Interval): PoolConfig {
  const hostRanges = c.hostRanges.filter((h) => !sameSpan(subnet, h, r));
  if (hostRanges.length === c.hostRanges.length) {
    throw new FlatnetError(
      'not-found',
      `${formatSubnet(subnet)} has no host range ${addressAt(subnet, r.start)}-${addressAt(subnet, r.end)}.`,
    );
  }
  const next: PoolConfig = { ...c, hostRanges };
  if (hostRanges.length === 0) delete next.gateway;
  return next;
}
