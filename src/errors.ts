/**
 * One error type for everything flatnet refuses or fails to do. The kind decides how each face reports it:
 * the plugin API maps it to an HTTP status with {"Err"}, the CLI to a one-line message and an exit code.
 */
export type ErrorKind =
  | 'invalid' // the request or input is malformed or breaks a rule; nothing was changed
  | 'conflict' // the request is well formed but collides with existing state (taken address, overlap)
  | 'exhausted' // no free address or pool is left
  | 'not-found' // a named object does not exist where existence is required
  | 'unavailable' // a dependency (etcd, iproute2) did not answer or failed
  | 'internal';

export class FlatnetError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FlatnetError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/*
 * The well-known refusals, worded once. Callers name what happened; the text and the kind live here so that the
 * plugin API, the CLI and the tests agree on them.
 */

export function poolNotFound(poolId: string): FlatnetError {
  return new FlatnetError('not-found', `Pool ${poolId} does not exist (was its network removed?).`);
}

export function poolExhausted(poolId: string): FlatnetError {
  return new FlatnetError(
    'exhausted',
    `Pool ${poolId} is exhausted: no free address is left in its ranges; add one with \`flatnet ip-range add\` or release addresses.`,
  );
}

export function noConfiguredPool(family: 4 | 6): FlatnetError {
  return new FlatnetError(
    'exhausted',
    `No configured IPv${family} pool is left for this host; pass --subnet (with --ip-range) or add a range with \`flatnet ip-range add\`.`,
  );
}

export function addressInUse(address: string): FlatnetError {
  return new FlatnetError('conflict', `${address} is already in use.`);
}

export function addressNotAllocatable(address: string, poolId: string): FlatnetError {
  return new FlatnetError(
    'invalid',
    `${address} is not available in pool ${poolId}: it is outside the pool's ranges or reserved (gateway, aux, host range).`,
  );
}

export function poolsOverlap(subnet: string, existing: string): FlatnetError {
  return new FlatnetError(
    'conflict',
    `${subnet} overlaps the existing pool ${existing}; use that subnet or one apart from it.`,
  );
}

export function noSuchPool(subnet: string): FlatnetError {
  return new FlatnetError('not-found', `There is no pool ${subnet}.`);
}

export function tooManyConflicts(what: string): FlatnetError {
  return new FlatnetError('unavailable', `Too many concurrent changes while trying to ${what}; try again.`);
}
