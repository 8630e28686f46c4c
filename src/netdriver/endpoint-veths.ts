import { errorMessage } from '../errors.js';
import type { IpRunner } from '../hostnet/ip-runner.js';
import { vethNames } from '../hostnet/names.js';
import { createVeth, deleteVeth, type VethSpec } from '../hostnet/veth.js';
import type { Logger } from '../observability/logger.js';
import { afterReply, type BackgroundWork } from '../util/background-work.js';

/**
 * Each endpoint's veth pair, made and removed off the container's path. Docker needs the pair only at Join and
 * builds the sandbox between CreateEndpoint and Join, so the pair is made meanwhile; a removal waits on the
 * kernel's RCU grace periods, which `docker stop` need not wait for, so it runs after Leave's reply. Names are
 * unique per endpoint, so nothing can reuse them meanwhile; a removal cut short by a crash is finished by the
 * veth reconcile at start.
 */
export class EndpointVeths {
  /** Pairs being made ahead, by endpoint id: true once made. */
  private readonly prepared = new Map<string, Promise<boolean>>();
  /** Endpoints whose pair Leave already removes: their DeleteEndpoint has nothing to delete. */
  private readonly left = new Set<string>();
  /** Removals still running, by endpoint id: a Join of the same endpoint waits for its removal. */
  private readonly removals = new Map<string, Promise<void>>();

  constructor(
    private readonly ip: IpRunner,
    private readonly work: BackgroundWork,
    private readonly logger: Logger,
  ) {}

  /** After CreateEndpoint's reply. A failure is only logged: Join then makes the pair and reports what fails. */
  prepare(endpointId: string, spec: VethSpec): void {
    const made = afterReply()
      .then(() => createVeth(this.ip, spec))
      .then(
        () => true,
        (err: unknown) => {
          this.logger.debug({ endpoint: endpointId.slice(0, 12), err: errorMessage(err) }, 'no veth made ahead');
          return false;
        },
      );
    this.prepared.set(endpointId, made);
    void this.work.track(made.then(() => undefined));
  }

  /** Join: resolves once the endpoint's pair exists, made ahead or now. */
  async ready(endpointId: string, spec: VethSpec): Promise<void> {
    await this.removals.get(endpointId);
    this.left.delete(endpointId);
    const ahead = this.prepared.get(endpointId);
    this.prepared.delete(endpointId);
    if (ahead === undefined || !(await ahead)) await createVeth(this.ip, spec);
  }

  /** Leave: the pair goes after the reply. */
  leave(endpointId: string): void {
    this.left.add(endpointId);
    this.removeAfterReply(endpointId);
  }

  /** DeleteEndpoint: Docker calls Leave first for a joined endpoint; without one seen (a restart), remove anyway. */
  deleted(endpointId: string): void {
    if (!this.left.delete(endpointId)) this.removeAfterReply(endpointId);
  }

  private removeAfterReply(endpointId: string): void {
    if (this.removals.has(endpointId)) return;
    // A pair still being made ahead is removed once it exists, or it would outlive its endpoint.
    const ahead = this.prepared.get(endpointId);
    this.prepared.delete(endpointId);
    const removal = Promise.all([ahead, afterReply()])
      .then(() => deleteVeth(this.ip, vethNames(endpointId)))
      .catch((err: unknown) =>
        this.logger.warn({ endpoint: endpointId.slice(0, 12), err: errorMessage(err) }, 'could not remove the veth'),
      )
      .finally(() => this.removals.delete(endpointId));
    this.removals.set(endpointId, this.work.track(removal));
  }
}
