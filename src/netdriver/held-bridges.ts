import { FlatnetError, errorMessage } from '../errors.js';
import { ensureBridge } from '../hostnet/bridge.js';
import { bridgeNic, portsOf } from '../hostnet/bridge-ports.js';
import { defaultRouteDev, listLinks, type LinkInfo } from '../hostnet/ip-json.js';
import type { IpRunner } from '../hostnet/ip-runner.js';
import { ensureForwardAccept } from '../hostnet/iptables.js';
import type { Logger } from '../observability/logger.js';
import type { BackgroundWork } from '../util/background-work.js';

/** The LAN NIC a bridge holds, and its MTU (no container link may be larger). */
export interface HeldNic {
  parent: string;
  parentMtu: number;
}

/**
 * The bridges that hold this host's LAN NICs: the takeover, the FORWARD rule, and what this process already made
 * sure of. A CreateNetwork on a bridge already held answers from memory and checks it all again after its reply:
 * on a swarm node the network is made with each node's first task, and every task there waits for it.
 */
export class HeldBridges {
  /** Serializes bridge changes: two networks created at once must not both try the takeover. */
  private lock: Promise<unknown> = Promise.resolve();
  private readonly held = new Map<string, HeldNic>();
  /** Bridges with a check after the reply still to come: a burst of CreateNetworks costs one. */
  private readonly recheckDue = new Set<string>();

  constructor(
    private readonly ip: IpRunner,
    private readonly intentDir: string,
    private readonly work: BackgroundWork,
    private readonly logger: Logger,
  ) {}

  /**
   * Runs `fn` under the bridge lock with the NIC `bridge` holds (taking it over first if needed). `mtu`: a
   * requested MTU larger than the NIC's is left for `fn` to refuse, with the host left as it was.
   */
  async use<T>(
    bridge: string,
    requestedParent: string | undefined,
    mtu: number | undefined,
    fn: (nic: HeldNic) => Promise<T>,
  ): Promise<T> {
    let fromMemory = false;
    const result = await this.withLock(async () => {
      const known = this.held.get(bridge);
      fromMemory = known !== undefined && (requestedParent === undefined || requestedParent === known.parent);
      const nic = fromMemory && known ? known : await this.hold(bridge, requestedParent, mtu);
      return { nic, value: await fn(nic) };
    });
    // Once the lock is free and the reply on its way: a spawn blocks the event loop for its fork.
    if (fromMemory && !this.recheckDue.has(bridge)) {
      this.recheckDue.add(bridge);
      void this.work.afterReply('bridge check after CreateNetwork', () => this.recheck(bridge, result.nic.parent));
    }
    return result.value;
  }

  /** At start: re-establishes each recorded bridge (after a reboot it is gone; Docker never re-sends CreateNetwork). */
  async restore(pairs: Iterable<{ bridge: string; parent: string }>): Promise<void> {
    for (const { bridge, parent } of pairs) {
      await this.withLock(async () => {
        try {
          await ensureBridge(this.ip, { bridge, parent, logger: this.logger, intentDir: this.intentDir });
          await ensureForwardAccept(this.ip, bridge, this.logger);
        } catch (err) {
          this.logger.error({ bridge, parent, err: errorMessage(err) }, 'could not re-establish the bridge');
        }
      });
    }
  }

  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Makes the bridge hold its NIC (the takeover, if needed) and the FORWARD rule; remembers both. Under the lock. */
  private async hold(bridge: string, requestedParent: string | undefined, mtu: number | undefined): Promise<HeldNic> {
    // Listed once: the default parent, the MTU check and the takeover plan all read this one listing.
    const links = await listLinks(this.ip);
    const parent = requestedParent ?? (await this.defaultParent(bridge, links));
    const parentMtu = links.find((l) => l.ifname === parent)?.mtu ?? 1500;
    if (mtu !== undefined && mtu > parentMtu) return { parent, parentMtu };
    await ensureBridge(this.ip, { bridge, parent, logger: this.logger, links, intentDir: this.intentDir });
    await ensureForwardAccept(this.ip, bridge, this.logger);
    this.held.set(bridge, { parent, parentMtu });
    return { parent, parentMtu };
  }

  /** The bridge still holds its NIC and the rule is there, else both are made again. */
  private async recheck(bridge: string, parent: string): Promise<void> {
    await this.withLock(async () => {
      this.recheckDue.delete(bridge);
      this.held.delete(bridge);
      await this.hold(bridge, parent, undefined);
    });
  }

  /** The NIC to take over when -o parent is absent: the default route's device, or the NIC already in the bridge. */
  private async defaultParent(bridge: string, links: readonly LinkInfo[]): Promise<string> {
    const dev = await defaultRouteDev(this.ip);
    if (dev === undefined) {
      throw new FlatnetError(
        'invalid',
        'This host has no default route to find its LAN NIC by; name it with -o parent=NIC.',
      );
    }
    if (dev !== bridge) return dev;
    const nic = bridgeNic(portsOf(links, bridge));
    if (nic === undefined) {
      throw new FlatnetError(
        'invalid',
        `Could not tell which port of "${bridge}" is the LAN NIC; name it with -o parent=NIC.`,
      );
    }
    return nic;
  }
}
