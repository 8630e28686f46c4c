import { request as httpRequest } from 'node:http';

/** A plugin call over the Unix socket the way dockerd makes it: empty Host, no Content-Type. */
export function post(socketPath: string, method: string, body = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath, method: 'POST', path: `/${method}`, headers: { Host: '', 'Content-Length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** GET on the metrics listener (HOST:PORT). */
export function get(address: string, path: string): Promise<{ status: number; text: string }> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve, reject) => {
    httpRequest({ host, port, path, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    })
      .on('error', reject)
      .end();
  });
}
