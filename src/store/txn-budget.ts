/**
 * etcd's limits on one txn, known here and nowhere else: --max-txn-ops (default 128) bounds the compares, the
 * success ops and the failure ops of a txn, each counted on its own; --max-request-bytes (default 1.5 MiB) bounds
 * the whole request. Every multi-key read or write of the store splits itself by this budget.
 */
export interface TxnLimits {
  ops: number;
  bytes: number;
}

/**
 * etcd's defaults, less what EtcdIo adds to every write (the marker's compare and put, the fenced failure branch)
 * and a margin for gRPC's framing of each op.
 */
export const ETCD_TXN_LIMITS: TxnLimits = { ops: 128, bytes: 1.5 * 1024 * 1024 };
/** What EtcdIo adds to each write: one compare and one put (the txn marker). */
export const MARKER_COST: TxnCost = { compares: 1, writes: 1, bytes: 128 };
/** Framing etcd's protobuf adds per op (tags, lengths, the range end of a delete). */
const OP_OVERHEAD_BYTES = 32;
/** Room left for the request's own header and anything not counted per op. */
const REQUEST_MARGIN_BYTES = 64 * 1024;

/** What a txn (or a part of one) spends: compares, success-branch ops, and request bytes. */
export interface TxnCost {
  compares: number;
  writes: number;
  bytes: number;
}

export const NO_COST: TxnCost = { compares: 0, writes: 0, bytes: 0 };

export function addCost(a: TxnCost, b: TxnCost): TxnCost {
  return { compares: a.compares + b.compares, writes: a.writes + b.writes, bytes: a.bytes + b.bytes };
}

/** The cost of one op on a key (and value): one write or compare, its bytes and framing. */
export function opBytes(key: string, value: Buffer | string | undefined = undefined): number {
  const v = value === undefined ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  return Buffer.byteLength(key) + v + OP_OVERHEAD_BYTES;
}

export function fits(cost: TxnCost, limits: TxnLimits = ETCD_TXN_LIMITS): boolean {
  return cost.compares <= limits.ops && cost.writes <= limits.ops && cost.bytes <= limits.bytes - REQUEST_MARGIN_BYTES;
}

/**
 * Splits items into consecutive groups, each of which fits in one txn together with `fixed` (what every txn of
 * the split spends anyway: the block, its summaries, the marker). Order is kept; an item that cannot fit even
 * alone is an error (a caller bug, never etcd's answer to wait for).
 */
export function splitByBudget<T>(
  items: readonly T[],
  costOf: (item: T) => TxnCost,
  fixed: TxnCost = NO_COST,
  limits: TxnLimits = ETCD_TXN_LIMITS,
): T[][] {
  const out: T[][] = [];
  let group: T[] = [];
  let spent = fixed;
  for (const item of items) {
    const cost = costOf(item);
    if (!fits(addCost(fixed, cost), limits)) throw new Error('splitByBudget: one item exceeds a whole txn');
    const next = addCost(spent, cost);
    if (fits(next, limits)) {
      group.push(item);
      spent = next;
      continue;
    }
    out.push(group);
    group = [item];
    spent = addCost(fixed, cost);
  }
  if (group.length > 0) out.push(group);
  return out;
}

/** How many items of equal cost fit beside `fixed` in one txn (at least 1, or an error). */
export function perTxn(each: TxnCost, fixed: TxnCost, limits: TxnLimits = ETCD_TXN_LIMITS): number {
  const byOps = (free: number, per: number): number => (per === 0 ? Number.POSITIVE_INFINITY : Math.floor(free / per));
  const n = Math.min(
    byOps(limits.ops - fixed.compares, each.compares),
    byOps(limits.ops - fixed.writes, each.writes),
    byOps(limits.bytes - REQUEST_MARGIN_BYTES - fixed.bytes, each.bytes),
  );
  if (!Number.isFinite(n) || n < 1) throw new Error('perTxn: not even one item fits in a txn');
  return n;
}
