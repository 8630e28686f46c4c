import type { z } from 'zod';
import { parseBody } from './parse-body.js';

/** Ids and addresses a call is about, for its log line (snake_case keys). */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** One `POST /<Interface>.<Method>`: turns the raw body into a JSON reply object, or throws. */
export interface PluginRoute {
  readonly method: string;
  run(body: Buffer, fields: LogFields): Promise<Record<string, unknown>>;
}

/** A call with a body: parsed and validated before the handler sees it, so bad input never reaches a driver. */
export function bodyRoute<S extends z.ZodType>(
  method: string,
  schema: S,
  handle: (input: z.output<S>, fields: LogFields) => Promise<Record<string, unknown>>,
): PluginRoute {
  return {
    method,
    run: (body, fields) => handle(parseBody(method, body, schema), fields),
  };
}

/** Argument-less calls (Activate, capabilities): Docker sends an empty body; whatever comes is ignored. */
export function constantRoute(method: string, reply: Record<string, unknown>): PluginRoute {
  return { method, run: async () => structuredClone(reply) };
}
