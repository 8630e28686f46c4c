import { CommanderError } from 'commander';
import { FlatnetError, errorMessage } from '../errors.js';

/** Exit codes: 2 when the user's input is at fault (usage, invalid values, collisions), 1 for any other failure. */
export const EXIT_FAILURE = 1;
export const EXIT_INVALID = 2;

export interface CliFailure {
  message: string;
  exitCode: number;
}

const ETCD_UNREACHABLE = new Set([
  'GRPCConnectFailedError',
  'GRPCUnavailableError',
  'GRPCDeadlineExceededError',
  'GRPCCancelledError',
  'ClientRuntimeError',
  // flatnet's own client skips an endpoint for a moment after it failed to connect (store/etcd-client.ts).
  'EtcdHostCoolingDown',
]);
const ETCD_AUTH = new Set([
  'EtcdAuthenticationFailedError',
  'EtcdInvalidAuthTokenError',
  'GRPCUnauthenticatedError',
  'EtcdPermissionDeniedError',
]);

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? text).trim();
}

/** grpc's texts ("14 UNAVAILABLE: No connection established. Last error: ...") cut to what an operator needs. */
export function shortEtcdReason(err: unknown): string {
  const text = firstLine(errorMessage(err)).replace(/\s*Resolution note:.*$/, '');
  const connect = /connect (E[A-Z]+)\s+(\S+?)\.?(\s|$)/.exec(text);
  if (connect?.[1] === 'ECONNREFUSED') return `connection refused by ${connect[2]}`;
  if (connect) return `cannot connect to ${connect[2]} (${connect[1]})`;
  if (/deadline exceeded/i.test(text)) return 'no answer before the timeout (--etcd-timeout-ms)';
  return text.replace(/^\d+\s+[A-Z_]+:\s*/, '');
}

/**
 * Turns anything thrown into one line for the operator. etcd3/grpc errors carry multi-line, cryptic texts:
 * they are named by what went wrong (unreachable, refused credentials) with the endpoints to check.
 * `secrets` are cut out of every message, whatever produced it.
 */
export function describeFailure(
  err: unknown,
  context: { etcdEndpoints?: string[]; secrets?: string[] } = {},
): CliFailure {
  const where = context.etcdEndpoints?.length ? ` at ${context.etcdEndpoints.join(',')}` : '';
  let failure: CliFailure;
  // the store wraps etcd3 errors; the wrapped one says best what went wrong (refused, unreachable)
  if (err instanceof FlatnetError && err.kind === 'unavailable' && err.cause instanceof Error) {
    const name = err.cause.constructor.name;
    if (ETCD_AUTH.has(name) || ETCD_UNREACHABLE.has(name)) err = err.cause;
  }
  if (err instanceof CommanderError) {
    failure = { message: err.message.replace(/^error:\s*/, '').replace(/\s*\n\s*/g, ' '), exitCode: EXIT_INVALID };
  } else if (err instanceof FlatnetError) {
    const exitCode = err.kind === 'invalid' || err.kind === 'conflict' ? EXIT_INVALID : EXIT_FAILURE;
    failure = { message: err.message, exitCode };
  } else if (err instanceof Error && ETCD_AUTH.has(err.constructor.name)) {
    failure = {
      message: `etcd${where} refused the credentials (check --etcd-username and FLATNET_ETCD_PASSWORD): ${shortEtcdReason(err)}`,
      exitCode: EXIT_FAILURE,
    };
  } else if (err instanceof Error && ETCD_UNREACHABLE.has(err.constructor.name)) {
    failure = {
      message: `cannot reach etcd${where} (is it running, and do --etcd-endpoints and the TLS files match it?): ${shortEtcdReason(err)}`,
      exitCode: EXIT_FAILURE,
    };
  } else {
    failure = { message: firstLine(errorMessage(err)), exitCode: EXIT_FAILURE };
  }
  for (const secret of context.secrets ?? []) {
    if (secret.length > 0) failure.message = failure.message.split(secret).join('<redacted>');
  }
  return failure;
}
