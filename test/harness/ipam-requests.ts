import { FlatnetError } from '../../src/errors.js';

/** A RequestPool body for IPv4 in flatnet's address space (subPool empty unless given). */
export const v4 = (pool: string, subPool = '') => ({
  addressSpace: 'FlatLocal',
  pool,
  subPool,
  options: {},
  v6: false,
});

/** An assert.rejects/throws matcher: a FlatnetError of this kind. */
export const kind =
  (k: string) =>
  (e: unknown): boolean =>
    e instanceof FlatnetError && e.kind === k;
