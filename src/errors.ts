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
