import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Structured JSON logs on stderr (stdout belongs to CLI output); secrets are redacted by path. Writes are
 * buffered (a sync write per plugin call halves throughput under load); callers flush before exiting.
 */
export function createLogger(level: string, name = 'flatnet'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['etcdPassword', '*.etcdPassword', 'password', '*.password'], censor: '<redacted>' },
    },
    pino.destination({ dest: 2, sync: false }),
  );
}

/** For tests and tools that want no log output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
