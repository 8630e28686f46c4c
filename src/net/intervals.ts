/**
 * Sets of bigint offsets as sorted, disjoint, non-adjacent inclusive intervals. Ranges, exclusions and the
 * allocatable space of a pool are all such sets, so a /8 (or a /64) costs a handful of numbers, not a list.
 */
export interface Interval {
  start: bigint;
  end: bigint;
}
export type IntervalSet = readonly Interval[];

export function normalize(items: readonly Interval[]): Interval[] {
  const sorted = items
    .filter((i) => i.start <= i.end)
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end + 1n) {
      if (i.end > last.end) last.end = i.end;
    } else {
      out.push({ start: i.start, end: i.end });
    }
  }
  return out;
}

export function union(a: IntervalSet, b: IntervalSet): Interval[] {
  return normalize([...a, ...b]);
}

export function intersect(a: IntervalSet, b: IntervalSet): Interval[] {
  const x = normalize(a);
  const y = normalize(b);
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    const p = x[i] as Interval;
    const q = y[j] as Interval;
    const start = p.start > q.start ? p.start : q.start;
    const end = p.end < q.end ? p.end : q.end;
    if (start <= end) out.push({ start, end });
    if (p.end < q.end) i++;
    else j++;
  }
  return out;
}

export function subtract(a: IntervalSet, b: IntervalSet): Interval[] {
  const cut = normalize(b);
  const out: Interval[] = [];
  for (const p of normalize(a)) {
    let start = p.start;
    for (const q of cut) {
      if (q.end < start || q.start > p.end) continue;
      if (q.start > start) out.push({ start, end: q.start - 1n });
      start = q.end + 1n;
      if (start > p.end) break;
    }
    if (start <= p.end) out.push({ start, end: p.end });
  }
  return out;
}

export function count(a: IntervalSet): bigint {
  return normalize(a).reduce((n, i) => n + (i.end - i.start + 1n), 0n);
}

export function contains(a: IntervalSet, value: bigint): boolean {
  return a.some((i) => i.start <= value && value <= i.end);
}

export function overlaps(a: Interval, b: Interval): boolean {
  return a.start <= b.end && b.start <= a.end;
}

/** True when b lies wholly inside a. */
export function covers(a: Interval, b: Interval): boolean {
  return a.start <= b.start && b.end <= a.end;
}

/** First member of the set at or after `from`, if any. */
export function firstAtOrAfter(a: IntervalSet, from: bigint): bigint | undefined {
  for (const i of a) {
    if (i.end < from) continue;
    return i.start > from ? i.start : from;
  }
  return undefined;
}

/** The k-th member (0-based) of the set, wrapping around its size. */
export function nthMember(a: IntervalSet, k: bigint): bigint | undefined {
  const total = count(a);
  if (total === 0n) return undefined;
  let rest = ((k % total) + total) % total;
  for (const i of normalize(a)) {
    const len = i.end - i.start + 1n;
    if (rest < len) return i.start + rest;
    rest -= len;
  }
  return undefined;
}
