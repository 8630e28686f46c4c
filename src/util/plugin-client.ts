import { request, type Agent } from 'node:http';

export interface PluginReply {
  status: number;
  /** The reply body as sent. */
  text: string;
}

export interface PluginCallOptions {
  /** Keep-alive agent for many calls in a row (benchmarks); default: a fresh connection per call. */
  agent?: Agent;
  /** Fails the call with "no answer within N ms" (doctor's probe); default: wait as long as it takes. */
  timeoutMs?: number;
}

/**
 * One plugin call over the Unix socket, made the way dockerd makes it: POST /<Method>, the Accept header of
 * the v1.2 protocol, an empty Host, no Content-Type, the body as given (JSON + '\n', or empty). Rejects only
 * when there is no HTTP answer.
 */
export function postPlugin(
  socketPath: string,
  method: string,
  body = '',
  options: PluginCallOptions = {},
): Promise<PluginReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: `/${method}`,
        headers: {
          Host: '',
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Content-Length': Buffer.byteLength(body),
        },
        ...(options.agent ? { agent: options.agent } : {}),
        ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
