/**
 * NOT production: the least a remote network + IPAM driver can do, so that bench/docker-run.ts measures, in the
 * same run, what Docker's remote-driver path costs by itself against its built-in drivers. Addresses come from a
 * counter in memory (no etcd), the veth pair is made at CreateEndpoint by one `ip -batch` spawn and put on a
 * bridge (as flatnet does), nothing is announced, probed or recorded.
 * Started by the bench inside a lab host's network namespace: node dist/bench/minimal-remote-driver.js SOCKET BRIDGE SUBNET24
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { z } from 'zod';
import { vethNames } from '../src/hostnet/names.js';

const [socket, bridge, subnet] = process.argv.slice(2);
if (socket === undefined || bridge === undefined || subnet === undefined || !/^\d+\.\d+\.\d+\.0\/24$/.test(subnet)) {
  throw new Error('usage: minimal-remote-driver SOCKET BRIDGE A.B.C.0/24');
}
const prefix = subnet.slice(0, subnet.lastIndexOf('.') + 1);
const body = z
  .object({
    EndpointID: z
      .string()
      .regex(/^[0-9a-f]{12,64}$/)
      .optional(),
    Address: z.string().optional(),
  })
  .passthrough();
type Body = z.infer<typeof body>;

let next = 2;
const free: number[] = [];
const veths = new Map<string, Promise<void>>();

function makeVeth(endpointId: string): Promise<void> {
  const n = vethNames(endpointId);
  return new Promise((resolve) => {
    const ip = spawn('ip', ['-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    ip.on('exit', () => resolve());
    ip.stdin.end(`link add ${n.host} type veth peer name ${n.container}\nlink set ${n.host} master ${bridge} up\n`);
  });
}

const endpoint = (b: Body): string => {
  if (b.EndpointID === undefined) throw new Error('no EndpointID');
  return b.EndpointID;
};

const calls: Record<string, (b: Body) => unknown> = {
  'Plugin.Activate': () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
  'NetworkDriver.GetCapabilities': () => ({ Scope: 'local' }),
  'NetworkDriver.CreateNetwork': () => ({}),
  'NetworkDriver.DeleteNetwork': () => ({}),
  'NetworkDriver.CreateEndpoint': (b) => {
    veths.set(endpoint(b), makeVeth(endpoint(b)));
    return {};
  },
  'NetworkDriver.DeleteEndpoint': (b) => {
    spawn('ip', ['link', 'del', vethNames(endpoint(b)).host], { stdio: 'ignore' });
    return {};
  },
  'NetworkDriver.EndpointOperInfo': () => ({ Value: {} }),
  'NetworkDriver.Join': async (b) => {
    const id = endpoint(b);
    await veths.get(id);
    veths.delete(id);
    return { InterfaceName: { SrcName: vethNames(id).container, DstPrefix: 'eth' }, Gateway: `${prefix}1` };
  },
  'NetworkDriver.Leave': () => ({}),
  'NetworkDriver.ProgramExternalConnectivity': () => ({}),
  'NetworkDriver.RevokeExternalConnectivity': () => ({}),
  'NetworkDriver.DiscoverNew': () => ({}),
  'NetworkDriver.DiscoverDelete': () => ({}),
  'IpamDriver.GetCapabilities': () => ({ RequiresMACAddress: false }),
  'IpamDriver.GetDefaultAddressSpaces': () => ({
    LocalDefaultAddressSpace: 'local',
    GlobalDefaultAddressSpace: 'global',
  }),
  'IpamDriver.RequestPool': () => ({ PoolID: subnet, Pool: subnet, Data: {} }),
  'IpamDriver.ReleasePool': () => ({}),
  'IpamDriver.RequestAddress': (b) => {
    if (b.Address) return { Address: `${b.Address}/24` };
    return { Address: `${prefix}${free.pop() ?? next++}/24` };
  },
  'IpamDriver.ReleaseAddress': (b) => {
    const last = Number((b.Address ?? '').split('.')[3]);
    if (last > 1) free.push(last);
    return {};
  },
};

rmSync(socket, { force: true });
createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const call = calls[(req.url ?? '').slice(1)];
    const text = Buffer.concat(chunks).toString();
    const answer = async (): Promise<unknown> => {
      if (call === undefined) return { Err: `unknown call ${req.url ?? ''}` };
      return call(body.parse(text === '' ? {} : JSON.parse(text)));
    };
    answer().then(
      (out) =>
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1+json' }).end(JSON.stringify(out)),
      (err: unknown) => res.writeHead(500).end(JSON.stringify({ Err: String(err) })),
    );
  });
}).listen(socket);
