import type { DockerEngineApi } from '../docker/engine-api.js';
import { errorMessage } from '../errors.js';
import type { OwnerService } from '../ipam/services/owner-service.js';
import type { EndpointOwnerHook } from '../netdriver/endpoint-owner-hook.js';
import type { Logger } from '../observability/logger.js';
import { BackgroundWork } from '../util/background-work.js';

/** What the owner records are written through, and where they are logged. */
export interface EndpointOwnersOptions {
  owners: Pick<OwnerService, 'record'>;
  /** undefined = no Docker API (container ids and names stay unknown). */
  docker: DockerEngineApi | undefined;
  logger: Logger;
  /** Delays (ms) of the attempts to learn the container after Join (each after the one before). */
  joinDelaysMs?: number[];
  /** Delays (ms) of the attempts to write the endpoint after CreateEndpoint (etcd unavailable, say). */
  createDelaysMs?: number[];
}

interface Known {
  networkId: string;
  addresses: string[];
}

const MAX_KNOWN = 10_000;

/** Keeps a set or map of endpoints bounded: the oldest entries (first inserted) go past MAX_KNOWN. */
function forgetOldest(entries: Set<string> | Map<string, unknown>): void {
  for (const oldest of entries.keys()) {
    if (entries.size <= MAX_KNOWN) return;
    entries.delete(oldest);
  }
}

/**
 * Fills the owner of each container address after the plugin replied: CreateEndpoint tells which endpoint and
 * network hold the address; after Join, Docker's own API tells the container id and name (Docker registers the
 * endpoint in the network only after Join returns, hence a few delayed attempts). Everything here runs in the
 * background, is safe to repeat and may be lost: an owner is information, never a condition for anything.
 * The first attempts wait about a second: an etcd write and a Docker API call made while the container starts
 * compete with its start and slow `docker run`, and a container gone by then (`docker run --rm` of a
 * short job) needs neither, so its pending attempts are dropped when its endpoint is deleted.
 */
export class EndpointOwners implements EndpointOwnerHook {
  private readonly known = new Map<string, Known>();
  /** Endpoints deleted (bounded, oldest forgotten first): an attempt already running for one stops there. */
  private readonly gone = new Set<string>();
  /** Cancels of the pending attempts per endpoint: a deleted endpoint's are dropped. */
  private readonly pending = new Map<string, Set<() => void>>();
  private readonly work: BackgroundWork;
  private readonly joinDelays: number[];
  private readonly createDelays: number[];

  constructor(private readonly o: EndpointOwnersOptions) {
    this.joinDelays = o.joinDelaysMs ?? [1000, 2000, 5000, 10_000];
    this.createDelays = o.createDelaysMs ?? [1000, 2000, 5000];
    this.work = new BackgroundWork(o.logger);
  }

  created(e: { networkId: string; endpointId: string; addresses: string[] }): void {
    const addresses = e.addresses.filter((a) => a !== '');
    if (addresses.length === 0) return;
    this.known.set(e.endpointId, { networkId: e.networkId, addresses });
    forgetOldest(this.known);
    this.gone.delete(e.endpointId);
    this.attempts(
      this.createDelays,
      async () => {
        for (const a of addresses) {
          if (this.gone.has(e.endpointId)) return true;
          await this.o.owners.record(a, { endpointId: e.endpointId, networkId: e.networkId });
        }
        return true;
      },
      { endpointId: e.endpointId, what: 'endpoint owner' },
    );
  }

  joined(networkId: string, endpointId: string): void {
    if (this.o.docker === undefined) return;
    const docker = this.o.docker;
    this.attempts(
      this.joinDelays,
      async () => {
        const holders = await docker.endpointHolders(networkId);
        const holder = holders?.get(endpointId);
        if (!holder) return false;
        const addresses =
          this.known.get(endpointId)?.addresses ?? [holder.ipv4Address, holder.ipv6Address].filter((a) => a !== '');
        for (const a of addresses) {
          if (this.gone.has(endpointId)) return true;
          await this.o.owners.record(a, {
            endpointId,
            networkId,
            containerId: holder.containerId,
            containerName: holder.containerName,
          });
        }
        this.known.delete(endpointId);
        return true;
      },
      { endpointId, what: 'container owner' },
    );
  }

  /** The endpoint is gone (DeleteEndpoint): its attempts not yet started are dropped. */
  removed(endpointId: string): void {
    this.known.delete(endpointId);
    this.gone.add(endpointId);
    forgetOldest(this.gone);
    for (const cancel of this.pending.get(endpointId) ?? []) cancel();
    this.pending.delete(endpointId);
  }

  /** Runs `attempt` after each delay until it returns true; failures are logged at debug and retried. */
  private attempts(delays: number[], attempt: () => Promise<boolean>, ctx: { endpointId: string; what: string }): void {
    const { endpointId } = ctx;
    const next = (i: number): void => {
      const delay = delays[i];
      if (this.gone.has(endpointId) || delay === undefined) return;
      const cancels = this.pending.get(endpointId) ?? new Set<() => void>();
      this.pending.set(endpointId, cancels);
      const cancel = this.work.after(ctx.what, delay, async () => {
        cancels.delete(cancel);
        if (cancels.size === 0 && this.pending.get(endpointId) === cancels) this.pending.delete(endpointId);
        const done = await attempt().catch((err: unknown) => {
          this.o.logger.debug(
            { ...ctx, attempt: i + 1, err: errorMessage(err) },
            'owner update failed; retrying later',
          );
          return false;
        });
        if (!done) next(i + 1);
      });
      cancels.add(cancel);
    };
    next(0);
  }

  /** Stops pending attempts and waits for running ones (before etcd closes). */
  close(): Promise<void> {
    this.pending.clear();
    return this.work.stop();
  }
}
