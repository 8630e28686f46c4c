import { request as httpRequest } from 'node:http';
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
