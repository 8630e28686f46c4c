import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Structured JSON logs on stderr (stdout belongs to CLI output). Writes are asynchronous (a sync write per
 * plugin call halves throughput under load); callers flush before exiting.
 * No pino `redact`: it cost a fifth of the per-call CPU of the plugin socket, and the one record that holds
 * secrets, the settings, is logged through redactSettings().
 */
export function createLogger(level: string, name = 'flatnet'): Logger {
  return pino({ name, level }, pino.destination({ dest: 2, sync: false }));
}

/** For tests and tools that want no log output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
