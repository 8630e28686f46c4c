import type { Agent } from 'node:http';
import { postPlugin } from '../../src/util/plugin-client.js';

export interface PluginResult {
  status: number;
  /** The reply parsed as JSON ({} for an empty reply). */
  json: Record<string, unknown>;
}

/**
 * A plugin call over the Unix socket as dockerd makes it (flatnet's own client, src/util/plugin-client.ts).
 * `body`: undefined = empty body (argument-less calls), a string = sent as is, anything else = JSON + '\n'.
 * Rejects when the reply is not JSON, so a test sees the text the server sent.
 */
export async function pluginCall(
  socketPath: string,
  method: string,
  body?: unknown,
  agent?: Agent,
): Promise<PluginResult> {
  const text = body === undefined ? '' : typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  const reply = await postPlugin(socketPath, method, text, agent ? { agent } : {});
  try {
    return { status: reply.status, json: reply.text === '' ? {} : (JSON.parse(reply.text) as Record<string, unknown>) };
  } catch {
    throw new Error(
      `${method} answered HTTP ${reply.status} with a body that is not JSON: ${reply.text.slice(0, 200)}`,
    );
  }
}
