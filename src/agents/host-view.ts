import { DockerEngineApi } from '../docker/engine-api.js';
import { errorMessage } from '../errors.js';
import type { HostView } from '../ipam/services/reconcile-plan.js';
import type { HostViewSource } from '../ipam/services/reconcile.js';
import { formatAddress, formatSubnet, parseSubnet, tryParseAddress } from '../net/address.js';
import { DriverState, type EndpointRecord } from '../netdriver/state.js';
import type { Logger } from '../observability/logger.js';

/** A plain address from "a.b.c.d/len", "a.b.c.d" or an IPv6 form, canonical as the IPAM stores it; '' if none. */
function canonicalAddress(text: string): string {
  const parsed = tryParseAddress(text.split('/')[0] ?? '');
  return parsed ? formatAddress(parsed.family, parsed.value) : '';
}

function canonicalSubnet(text: string): string | undefined {
  try {
    return formatSubnet(parseSubnet(text));
  } catch {
    return undefined;
  }
}

function missingDir(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * An endpoint record is stale when Docker, read in full, does not know its endpoint and the record is older than
 * `staleAfterMs` (Docker lists an endpoint only once it is joined). Such a record is what a container removed
 * while the plugin was down leaves behind: Docker forgot the endpoint after its Leave and DeleteEndpoint failed.
 * An unparseable creation time counts as young: unknown age is never a reason to free.
 */
export function staleEndpointRecord(
  rec: { endpointId: string; createdAt: string },
  docker: ReadonlySet<string> | undefined,
  o: { now: number; staleAfterMs: number },
): boolean {
  if (docker === undefined || docker.has(rec.endpointId)) return false;
  const created = Date.parse(rec.createdAt);
  return !Number.isNaN(created) && o.now - created >= o.staleAfterMs;
}

/**
 * This host's endpoints as it can see them: the network driver's records in the state dir (each endpoint file
 * carries its addresses) and, where reachable, dockerd's own view (every network on this host, for pools used
 * under other network drivers). A subnet's view is complete when Docker answered in full, or else when the state
 * dir holds at least as many flatnet networks on it as this host has claims (each claim is one network). With
 * Docker's full view, a record of an endpoint Docker no longer knows holds nothing once older than
 * `staleAfterMs` (the reconcile's grace; default: records always hold).
 */
export class LocalHostView implements HostViewSource {
  private readonly state: DriverState;

  constructor(
    private readonly o: { stateDir: string; docker?: DockerEngineApi; logger: Logger; staleAfterMs?: number },
  ) {
    this.state = new DriverState(o.stateDir);
  }

  static fromSettings(
    s: { stateDir: string; dockerSocket: string; reconcileGraceMs: number },
    logger: Logger,
  ): LocalHostView {
    return new LocalHostView({
      stateDir: s.stateDir,
      docker: new DockerEngineApi({ socketPath: s.dockerSocket, timeoutMs: 2000 }),
      logger,
      staleAfterMs: s.reconcileGraceMs,
    });
  }

  async view(claims: ReadonlyMap<string, number>): Promise<HostView> {
    const held = new Set<string>();
    const incomplete = new Map<string, string>();
    const complete = new Set<string>();
    let ids: string[] = [];
    try {
      ids = await this.state.endpointIds();
    } catch (err) {
      if (!missingDir(err))
        return {
          held,
          complete,
          incomplete,
          dockerComplete: false,
          unusable: `cannot read endpoint records: ${errorMessage(err)}`,
        };
    }
    const records: EndpointRecord[] = [];
    for (const id of ids) {
      try {
        const rec = await this.state.getEndpoint(id);
        if (rec) records.push(rec);
      } catch (err) {
        // One unreadable endpoint file hides which address it holds: no address may be freed.
        return {
          held,
          complete,
          incomplete,
          dockerComplete: false,
          unusable: `endpoint record ${id} is unreadable: ${errorMessage(err)}`,
        };
      }
    }
    const stateNetworks = new Map<string, number>();
    try {
      for (const n of await this.state.listNetworks()) {
        for (const pool of [n.pool, n.poolIPv6]) {
          const s = pool === '' ? undefined : canonicalSubnet(pool);
          if (s !== undefined) stateNetworks.set(s, (stateNetworks.get(s) ?? 0) + 1);
        }
      }
    } catch (err) {
      if (!missingDir(err)) this.o.logger.warn({ error: errorMessage(err) }, 'cannot list network records');
    }

    let dockerComplete = false;
    let dockerWhy = 'no Docker API configured';
    const dockerEndpoints = new Set<string>();
    if (this.o.docker) {
      try {
        for (const n of await this.o.docker.networks()) {
          if (n.subnets.length === 0) continue;
          const holders = await this.o.docker.endpointHolders(n.id);
          for (const h of holders?.values() ?? []) {
            dockerEndpoints.add(h.endpointId);
            for (const a of [h.ipv4Address, h.ipv6Address])
              if (canonicalAddress(a) !== '') held.add(canonicalAddress(a));
          }
        }
        dockerComplete = true;
      } catch (err) {
        dockerWhy = `Docker's API is unreachable (${errorMessage(err)})`;
      }
    }
    const staleAfterMs = this.o.staleAfterMs;
    const known = dockerComplete && staleAfterMs !== undefined ? dockerEndpoints : undefined;
    for (const rec of records) {
      if (staleAfterMs !== undefined && staleEndpointRecord(rec, known, { now: Date.now(), staleAfterMs })) {
        this.o.logger.info(
          { endpointId: rec.endpointId, address: rec.address, createdAt: rec.createdAt },
          'endpoint record Docker no longer knows holds no address',
        );
        continue;
      }
      for (const a of [rec.address, rec.addressIPv6]) if (canonicalAddress(a) !== '') held.add(canonicalAddress(a));
    }
    if (!dockerComplete) {
      for (const s of new Set([...claims.keys(), ...stateNetworks.keys()])) {
        const records = stateNetworks.get(s) ?? 0;
        const networks = claims.get(s) ?? 0;
        if (records > 0 && records >= networks) complete.add(s);
        else
          incomplete.set(
            s,
            `${dockerWhy} and the state dir has ${records} network record(s) for the ${networks} network(s) this host claims`,
          );
      }
    }
    return { held, complete, incomplete, dockerComplete };
  }
}
