import { startProcess } from '../../src/lab/processes.js';
import { waitFor } from '../../src/lab/processes.js';
import type { Lab } from '../../src/lab/lab.js';

// A DNS responder for one test, run with node inside the LAN (router) namespace on the lab's DNS address: it
// prints each queried name and answers REFUSED, so that a test sees where the lab's lookups go.
const RESPONDER = `
const dgram = require('node:dgram');
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  if (m.length < 12) return;
  const labels = [];
  let i = 12;
  while (i < m.length && m[i] !== 0 && labels.length < 64) { labels.push(m.subarray(i + 1, i + 1 + m[i]).toString('latin1')); i += m[i] + 1; }
  process.stdout.write('query ' + labels.join('.') + '\\n');
  const reply = Buffer.from(m.subarray(0, Math.min(m.length, i + 5)));
  reply[2] = 0x80 | (m[2] & 0x79); reply[3] = 0x05; // response, same opcode and RD; rcode REFUSED
  reply.writeUInt16BE(0, 6); reply.writeUInt16BE(0, 8); reply.writeUInt16BE(0, 10);
  s.send(reply, r.port, r.address);
});
s.bind(53, process.argv[1], () => process.stdout.write('listening\\n'));
`;

export interface DnsListener {
  /** Names queried so far. */
  queries(): string[];
  stop(): Promise<void>;
}

export async function listenForDns(lab: Lab, address: string): Promise<DnsListener> {
  const proc = startProcess('nsenter', [
    `--net=/run/netns/${lab.lanNetns}`,
    process.execPath,
    '-e',
    RESPONDER,
    address,
  ]);
  let out = '';
  proc.child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.child.stderr?.resume();
  try {
    await waitFor('the lab DNS responder', async () => (out.includes('listening') ? true : undefined), 10_000, 50);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  return {
    queries: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('query '))
        .map((l) => l.slice(6)),
    stop: () => proc.stop('SIGTERM', 2000),
  };
}
