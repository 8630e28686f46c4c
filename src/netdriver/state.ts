import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FlatnetError } from '../errors.js';
import { syncFile, writeFileAtomic } from '../util/atomic-file.js';

export const networkRecordSchema = z.object({
  networkId: z.string(),
  bridge: z.string(),
  parent: z.string(),
  mtu: z.number().int(),
  /** Bare IPv4 gateway (the LAN router), '' when Docker sent none. */
  gateway: z.string(),
  pool: z.string(),
  gatewayIPv6: z.string(),
  poolIPv6: z.string(),
  generic: z.record(z.string(), z.string()),
  internal: z.boolean(),
  createdAt: z.string(),
});
export type NetworkRecord = z.infer<typeof networkRecordSchema>;

export const endpointRecordSchema = z.object({
  endpointId: z.string(),
  networkId: z.string(),
  /** CIDR or '' */
  address: z.string(),
  addressIPv6: z.string(),
  macAddress: z.string(),
  hostIfname: z.string(),
  containerIfname: z.string(),
  createdAt: z.string(),
});
export type EndpointRecord = z.infer<typeof endpointRecordSchema>;

const ID = /^[A-Za-z0-9_-]{1,128}$/;

export function assertId(id: string, what: string): string {
  if (!ID.test(id))
    throw new FlatnetError('invalid', `The ${what} "${id}" is not a valid id (letters, digits, '_' or '-').`);
  return id;
}

/**
 * Host-local driver state: one JSON file per network and per endpoint. Never remote, so network-driver
 * calls cannot hang on etcd.
 */
export class DriverState {
  readonly networksDir: string;
  readonly endpointsDir: string;

  constructor(readonly stateDir: string) {
    this.networksDir = join(stateDir, 'networks');
    this.endpointsDir = join(stateDir, 'endpoints');
  }

  async init(): Promise<void> {
    await mkdir(this.networksDir, { recursive: true, mode: 0o700 });
    await mkdir(this.endpointsDir, { recursive: true, mode: 0o700 });
  }

  private async read<T>(dir: string, id: string, schema: z.ZodType<T>, what: string): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(join(dir, `${id}.json`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text) as unknown;
    } catch {
      data = undefined;
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new FlatnetError(
        'internal',
        `The ${what} state file ${join(dir, `${id}.json`)} is damaged; remove it or restore it.`,
      );
    }
    return parsed.data;
  }

  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    return this.read(this.networksDir, assertId(id, 'network id'), networkRecordSchema, 'network');
  }

  async getEndpoint(id: string): Promise<EndpointRecord | undefined> {
    return this.read(this.endpointsDir, assertId(id, 'endpoint id'), endpointRecordSchema, 'endpoint');
  }

  /** `durable: false`: on disk (atomically) but not fsynced; syncNetwork makes it durable. */
  async putNetwork(rec: NetworkRecord, options: { durable?: boolean } = {}): Promise<void> {
    await writeFileAtomic(
      join(this.networksDir, `${assertId(rec.networkId, 'network id')}.json`),
      `${JSON.stringify(rec, null, 2)}\n`,
      options,
    );
  }

  /** Nothing to do for a record deleted meanwhile (DeleteNetwork right after CreateNetwork). */
  async syncNetwork(id: string): Promise<void> {
    try {
      await syncFile(join(this.networksDir, `${assertId(id, 'network id')}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  /** Not fsynced (two fsyncs on the path of every container start): after a power loss its container is gone too. */
  async putEndpoint(rec: EndpointRecord): Promise<void> {
    await writeFileAtomic(
      join(this.endpointsDir, `${assertId(rec.endpointId, 'endpoint id')}.json`),
      `${JSON.stringify(rec, null, 2)}\n`,
      { durable: false },
    );
  }

  async deleteNetwork(id: string): Promise<void> {
    await rm(join(this.networksDir, `${assertId(id, 'network id')}.json`), { force: true });
  }

  async deleteEndpoint(id: string): Promise<void> {
    await rm(join(this.endpointsDir, `${assertId(id, 'endpoint id')}.json`), { force: true });
  }

  async listNetworks(): Promise<NetworkRecord[]> {
    const ids = (await readdir(this.networksDir))
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -'.json'.length));
    const out: NetworkRecord[] = [];
    for (const id of ids) {
      // One damaged record must not keep every other network's bridge from coming back after a reboot;
      // the damaged one is reported when Docker next names it (getNetwork throws then).
      const rec = await this.getNetwork(id).catch(() => undefined);
      if (rec !== undefined) out.push(rec);
    }
    return out;
  }

  /** Ids of every endpoint file, readable or not (a damaged record still claims its links). */
  async endpointIds(): Promise<string[]> {
    return (await readdir(this.endpointsDir))
      .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
      .map((n) => n.slice(0, -'.json'.length));
  }
}
