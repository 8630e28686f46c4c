import { request } from 'node:http';
import { z } from 'zod';
import { FlatnetError, errorMessage } from '../errors.js';

/**
 * A read-only client of the local dockerd's own API (its Unix socket). flatnet asks it for what the plugin
 * protocol does not carry (the engine's version, which container holds an endpoint). dockerd may itself be
 * waiting on a plugin call of ours, so every call has a short deadline and callers must never wait on it in a
 * plugin call's path.
 */

const versionSchema = z.object({ Version: z.string(), ApiVersion: z.string() });

const networkSchema = z.object({
  Id: z.string(),
  Name: z.string(),
  Containers: z
    .record(
      z.string(),
      z.object({
        Name: z.string(),
        EndpointID: z.string(),
        MacAddress: z.string().default(''),
        IPv4Address: z.string().default(''),
        IPv6Address: z.string().default(''),
      }),
    )
    .nullish()
    .transform((c) => c ?? {}),
});

const networkListSchema = z.array(
  z.object({
    Id: z.string(),
    Name: z.string(),
    Driver: z.string().default(''),
    IPAM: z
      .object({
        Driver: z.string().default(''),
        Config: z.array(z.object({ Subnet: z.string().default('') })).nullish(),
      })
      .nullish(),
  }),
);

export interface NetworkSummary {
  id: string;
  name: string;
  driver: string;
  ipamDriver: string;
  /** The subnets of its IPAM config as Docker stores them (CIDR). */
  subnets: string[];
}

export interface EngineVersion {
  version: string;
  apiVersion: string;
  /** Major and minor of the engine version, for feature checks (0.0 when unparseable). */
  major: number;
  minor: number;
}

export interface EndpointHolder {
  endpointId: string;
  containerId: string;
  containerName: string;
  macAddress: string;
  ipv4Address: string;
  ipv6Address: string;
}

export interface EngineApiOptions {
  socketPath: string;
  timeoutMs?: number;
  /** Largest reply accepted; an inspect of a network with thousands of containers stays well below. */
  maxBytes?: number;
}

/** "28.5.1" → 28, 5; Debian's "20.10.24+dfsg1" → 20, 10. */
export function parseEngineVersion(version: string): { major: number; minor: number } {
  const m = /^(\d+)\.(\d+)/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : { major: 0, minor: 0 };
}

export class DockerEngineApi {
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(private readonly o: EngineApiOptions) {
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.maxBytes = o.maxBytes ?? 16 * 1024 * 1024;
  }

  async version(): Promise<EngineVersion> {
    const v = versionSchema.parse(await this.get('/version'));
    return { version: v.Version, apiVersion: v.ApiVersion, ...parseEngineVersion(v.Version) };
  }

  /** The containers attached to a network as dockerd sees them, keyed by endpoint id; undefined if no such network. */
  async endpointHolders(networkId: string): Promise<Map<string, EndpointHolder> | undefined> {
    if (!/^[0-9a-f]{12,64}$/.test(networkId))
      throw new FlatnetError('invalid', `"${networkId}" is not a Docker network id.`);
    const raw = await this.get(`/networks/${networkId}`);
    if (raw === undefined) return undefined;
    const net = networkSchema.parse(raw);
    const out = new Map<string, EndpointHolder>();
    for (const [containerId, c] of Object.entries(net.Containers)) {
      out.set(c.EndpointID, {
        endpointId: c.EndpointID,
        containerId,
        containerName: c.Name,
        macAddress: c.MacAddress,
        ipv4Address: c.IPv4Address,
        ipv6Address: c.IPv6Address,
      });
    }
    return out;
  }

  /** Every network dockerd knows, with its IPAM driver and subnets (the list carries no endpoints). */
  async networks(): Promise<NetworkSummary[]> {
    const raw = await this.get('/networks');
    if (raw === undefined)
      throw new FlatnetError('unavailable', `Docker's API at ${this.o.socketPath} has no network list`);
    return networkListSchema.parse(raw).map((n) => ({
      id: n.Id,
      name: n.Name,
      driver: n.Driver,
      ipamDriver: n.IPAM?.Driver ?? '',
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((x) => x !== ''),
    }));
  }

  /** GET a path; undefined on 404; rejects with FlatnetError('unavailable') on anything that is not an answer. */
  private get(path: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const fail = (why: string, cause?: unknown) =>
        reject(
          new FlatnetError(
            'unavailable',
            `Docker's API at ${this.o.socketPath} ${why}`,
            cause === undefined ? undefined : { cause },
          ),
        );
      const req = request(
        { socketPath: this.o.socketPath, path, method: 'GET', headers: { host: 'docker' }, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.maxBytes) {
              req.destroy();
              fail(`sent more than ${this.maxBytes} bytes for ${path}`);
              return;
            }
            chunks.push(c);
          });
          res.on('error', (err) => fail(`broke off its reply to ${path}: ${errorMessage(err)}`, err));
          res.on('end', () => {
            if (res.statusCode === 404) return resolve(undefined);
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200)
              return fail(`answered ${res.statusCode} to ${path}: ${body.trim().slice(0, 200)}`);
            try {
              resolve(JSON.parse(body) as unknown);
            } catch (err) {
              fail(`sent a reply to ${path} that is not JSON`, err);
            }
          });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        fail(`did not answer ${path} within ${this.timeoutMs} ms`);
      });
      req.on('error', (err) => fail(`cannot be reached: ${errorMessage(err)}`, err));
      req.end();
    });
  }
}
