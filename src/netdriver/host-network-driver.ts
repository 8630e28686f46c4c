import { Address4, Address6 } from 'ip-address';
import { FlatnetError, errorMessage } from '../errors.js';
import { Announcer } from '../hostnet/announce.js';
import { ensureBridge } from '../hostnet/bridge.js';
import { defaultRouteDev, listLinks } from '../hostnet/ip-json.js';
import { IpRunner } from '../hostnet/ip-runner.js';
import { ensureForwardAccept } from '../hostnet/iptables.js';
import { recoverTakeovers } from '../hostnet/takeover-intent.js';
import { bridgeNic, portsOf } from '../hostnet/bridge-ports.js';
import type { LinkInfo } from '../hostnet/ip-json.js';
import { vethNames } from '../hostnet/names.js';
import { createVeth, deleteVeth, type VethSpec } from '../hostnet/veth.js';
import type { Logger } from '../observability/logger.js';
import { deriveEndpointMac } from './mac.js';
import type {
  CreateEndpointInput,
  CreateEndpointResult,
  CreateNetworkInput,
  JoinInput,
  JoinResult,
  NetworkDriver,
} from './network-driver.js';
import { refuseUnsupportedNetwork } from './network-request.js';
import { parseNetworkOptions } from './options.js';
import { removeOrphanVeths } from './reconcile.js';
import { assertId, DriverState, type NetworkRecord } from './state.js';

export interface HostNetworkDriverOptions {
  /** Host-local directory for network and endpoint records (settings.stateDir). */
  stateDir: string;
  logger: Logger;
  /** Where links are made; default: the current network namespace. */
  ip?: IpRunner;
  /**
   * Gratuitous ARP / unsolicited neighbour advertisement after Join (default true), on every engine: Docker 28.5's
   * own unsolicited ARP for a remote driver's endpoint says "who-has 0.0.0.0 tell 0.0.0.0" (seen on the lab's LAN
   * with tcpdump), which updates no neighbour's cache.
   */
  announce?: boolean;
  announceTimeoutMs?: number;
  /** Told who holds an address (see EndpointOwnerHook); absent = nobody listens. */
  owners?: EndpointOwnerHook;
}

/**
 * Who holds the IPAM's addresses, as the network driver learns it. Called on the plugin call's path, so an
 * implementation only schedules its work (after the reply) and never throws.
 */
export interface EndpointOwnerHook {
  created(e: { networkId: string; endpointId: string; addresses: string[] }): void;
  joined(networkId: string, endpointId: string): void;
  /** DeleteEndpoint: the endpoint's address is no longer held through it. */
  removed(endpointId: string): void;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

function bareIp(cidr: string | undefined, v6: boolean, what: string): string {
  if (cidr === undefined || cidr === '') return '';
  const ip = cidr.split('/')[0] ?? '';
  const ok = v6 ? Address6.isValid(ip) : Address4.isValid(ip) && ip.split('.').length === 4;
  if (!ok) throw new FlatnetError('invalid', `The ${what} "${cidr}" is not a valid ${v6 ? 'IPv6' : 'IPv4'} address.`);
  return ip;
}

function checkCidr(cidr: string, v6: boolean, what: string): void {
  if (cidr === '') return;
  if (!cidr.includes('/') || bareIp(cidr, v6, what) === '') {
    throw new FlatnetError('invalid', `The ${what} "${cidr}" is not an address in CIDR form.`);
  }
}

/**
 * NetworkDriver over a host bridge that holds the LAN NIC: networks are records pointing at the bridge,
 * endpoints are veth pairs with one end in the bridge. All state is host-local and written before replying.
 */
/** Resolves once the reply being written now has gone out (work that spawns a process waits for it). */
function afterReply(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class HostNetworkDriver implements NetworkDriver {
  private readonly state: DriverState;
  private readonly ip: IpRunner;
  private readonly logger: Logger;
  private readonly announcer: Announcer | undefined;
  private ready: Promise<void> | undefined;
  private dirsReady: Promise<void> | undefined;
  /** Serializes bridge changes: two networks created at once must not both try the takeover. */
  private bridgeLock: Promise<unknown> = Promise.resolve();
  private readonly background = new Set<Promise<void>>();
  /** Veth removals still running, by endpoint id (see removeVethInBackground). */
  private readonly removals = new Map<string, Promise<void>>();
  /** Veth pairs created ahead, at CreateEndpoint, by endpoint id: true once made (see prepareVeth). */
  private readonly prepared = new Map<string, Promise<boolean>>();
  /** Endpoints whose veth Leave already removes: their DeleteEndpoint has nothing to delete. */
  private readonly left = new Set<string>();
  /**
   * Bridges this process made sure of (holding their NIC, FORWARD rule in place), with the NIC and its MTU. A
   * CreateNetwork on one of them checks all of it again after its reply, not before: on a swarm node the network
   * is made again with each node's first task, every task there waits for it, and the `ip` listing took 60-330 ms
   * of it under that load (measured).
   */
  private readonly bridgesHeld = new Map<string, { parent: string; parentMtu: number }>();
  /** Bridges with a check after the reply still to come: a burst of CreateNetworks costs one. */
  private readonly recheckDue = new Set<string>();
  private readonly owners: EndpointOwnerHook | undefined;

  constructor(options: HostNetworkDriverOptions) {
    this.owners = options.owners;
    this.state = new DriverState(options.stateDir);
    this.ip = options.ip ?? new IpRunner();
    this.logger = options.logger;
    this.announcer =
      options.announce === false
        ? undefined
        : new Announcer(this.ip, this.logger, {
            ...(options.announceTimeoutMs !== undefined ? { timeoutMs: options.announceTimeoutMs } : {}),
          });
  }

  /**
   * Call once at server start: creates the state directories, re-establishes the bridge of every recorded
   * network (after a reboot the bridge is gone, and Docker never re-sends CreateNetwork) and removes veths
   * of forgotten endpoints. Problems are logged, not thrown, so the plugin still comes up.
   */
  init(): Promise<void> {
    this.ready ??= (async () => {
      await this.dirs();
      // A takeover cut short by a crash is finished or rolled back before any bridge is re-established.
      await recoverTakeovers(this.ip, this.state.stateDir, this.logger).catch((err: unknown) => {
        this.logger.error({ err: errorMessage(err) }, 'could not recover a bridge takeover cut short');
      });
      await this.restoreNetworks().catch((err: unknown) => {
        this.logger.error({ err: errorMessage(err) }, 'could not re-establish the bridge of recorded networks');
      });
      await this.reconcile().catch((err: unknown) => {
        this.logger.warn({ err: errorMessage(err) }, 'startup reconciliation of veths failed');
      });
    })();
    return this.ready;
  }

  private async restoreNetworks(): Promise<void> {
    const pairs = new Map<string, { bridge: string; parent: string }>();
    for (const n of await this.state.listNetworks())
      pairs.set(`${n.bridge}/${n.parent}`, { bridge: n.bridge, parent: n.parent });
    for (const { bridge, parent } of pairs.values()) {
      await this.withBridgeLock(async () => {
        try {
          await ensureBridge(this.ip, { bridge, parent, logger: this.logger, intentDir: this.state.stateDir });
          await ensureForwardAccept(this.ip, bridge, this.logger);
        } catch (err) {
          this.logger.error({ bridge, parent, err: errorMessage(err) }, 'could not re-establish the bridge');
        }
      });
    }
  }

  private dirs(): Promise<void> {
    this.dirsReady ??= this.state.init().catch((err: unknown) => {
      this.dirsReady = undefined;
      throw new FlatnetError(
        'unavailable',
        `Cannot create the state directory ${this.state.stateDir}: ${errorMessage(err)}`,
      );
    });
    return this.dirsReady;
  }

  /** Removes flatnet veths whose endpoint record no longer exists; returns their names. */
  async reconcile(): Promise<string[]> {
    await this.dirs();
    return removeOrphanVeths(this.ip, await this.state.endpointIds(), this.logger);
  }

  /** Server shutdown: lets background announcements and veth removals finish, then ends the ip session. */
  async close(): Promise<void> {
    this.announcer?.stop();
    await this.idle();
    this.ip.close();
  }

  /** Resolves when every background announcement and veth removal started so far has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  private withBridgeLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.bridgeLock.then(fn, fn);
    this.bridgeLock = run.catch(() => undefined);
    return run;
  }

  /** The NIC to take over when -o parent is absent: the default route's device, or the NIC already in our bridge. */
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

  async createNetwork(input: CreateNetworkInput): Promise<void> {
    assertId(input.networkId, 'network id');
    const opts = parseNetworkOptions(input.generic);
    refuseUnsupportedNetwork(input);
    const v4 = input.ipv4Data[0];
    const v6 = input.ipv6Data[0];
    const gateway = bareIp(v4?.gateway, false, 'IPv4 gateway');
    const gatewayIPv6 = bareIp(v6?.gateway, true, 'IPv6 gateway');
    await this.dirs();
    if ((await this.state.getNetwork(input.networkId)) !== undefined) return;
    const recheck = await this.withBridgeLock(async () => {
      const held = this.bridgesHeld.get(opts.bridge);
      const known = held !== undefined && (opts.parent === undefined || opts.parent === held.parent) ? held : undefined;
      const { parent, parentMtu } = known ?? (await this.holdBridge(opts.bridge, opts.parent, opts.mtu));
      if (opts.mtu !== undefined && opts.mtu > parentMtu) {
        throw new FlatnetError('invalid', `-o mtu=${opts.mtu} is larger than the MTU of ${parent} (${parentMtu}).`);
      }
      const record: NetworkRecord = {
        networkId: input.networkId,
        bridge: opts.bridge,
        parent,
        mtu: opts.mtu ?? parentMtu,
        gateway,
        pool: v4?.pool ?? '',
        gatewayIPv6,
        poolIPv6: v6?.pool ?? '',
        generic: input.generic,
        internal: input.internal,
        createdAt: new Date().toISOString(),
      };
      // On disk before the reply (a killed plugin finds it at its start), durable right after it: the fsyncs took
      // 50-500 ms on a swarm node starting its tasks (measured). A power loss in between can lose the record, or
      // leave it empty (read as damaged), of a network whose `docker network create` had just returned.
      await this.state.putNetwork(record, { durable: false });
      this.track(
        afterReply()
          .then(() => this.state.syncNetwork(record.networkId))
          .catch((err: unknown) => {
            this.logger.warn(
              { networkId: record.networkId, err: errorMessage(err) },
              'could not fsync a network record; it is on disk but may not survive a power loss',
            );
          }),
      );
      this.logger.info(
        { networkId: input.networkId, bridge: record.bridge, parent, mtu: record.mtu },
        'network created',
      );
      return known ? parent : undefined;
    });
    // Scheduled once the lock is free and the reply on its way: a spawn blocks the event loop for its fork.
    if (recheck !== undefined && !this.recheckDue.has(opts.bridge)) {
      this.recheckDue.add(opts.bridge);
      this.track(afterReply().then(() => this.recheckBridge(opts.bridge, recheck)));
    }
  }

  /**
   * Makes the bridge hold its NIC (the takeover, if needed) and the FORWARD rule; remembers both for the next
   * CreateNetwork. Run under the bridge lock. `mtu`: a refused MTU must leave the host as it was.
   */
  private async holdBridge(
    bridge: string,
    requestedParent: string | undefined,
    mtu: number | undefined,
  ): Promise<{ parent: string; parentMtu: number }> {
    // Listed once: the default parent, the MTU check and the takeover plan all read this one listing.
    const links = await listLinks(this.ip);
    const parent = requestedParent ?? (await this.defaultParent(bridge, links));
    const parentMtu = links.find((l) => l.ifname === parent)?.mtu ?? 1500;
    if (mtu !== undefined && mtu > parentMtu) return { parent, parentMtu };
    await ensureBridge(this.ip, { bridge, parent, logger: this.logger, links, intentDir: this.state.stateDir });
    await ensureForwardAccept(this.ip, bridge, this.logger);
    this.bridgesHeld.set(bridge, { parent, parentMtu });
    return { parent, parentMtu };
  }

  /** After a CreateNetwork's reply: the bridge still holds its NIC, the rule is there (else both are made again). */
  private recheckBridge(bridge: string, parent: string): Promise<void> {
    return this.withBridgeLock(async () => {
      this.recheckDue.delete(bridge);
      this.bridgesHeld.delete(bridge);
      await this.holdBridge(bridge, parent, undefined);
    }).catch((err: unknown) => {
      this.logger.warn(
        { bridge, parent, err: errorMessage(err) },
        'bridge check after CreateNetwork failed; the next CreateNetwork makes sure of it before its reply',
      );
    });
  }

  async deleteNetwork(networkId: string): Promise<void> {
    assertId(networkId, 'network id');
    await this.dirs();
    // The bridge stays: it carries the host's own LAN address (and maybe other networks).
    await this.state.deleteNetwork(networkId);
  }

  private async network(networkId: string): Promise<NetworkRecord> {
    const net = await this.state.getNetwork(assertId(networkId, 'network id'));
    if (net === undefined) {
      throw new FlatnetError(
        'not-found',
        `Network ${networkId.slice(0, 12)} is unknown to flatnet on this host; recreate it with docker network create.`,
      );
    }
    return net;
  }

  async createEndpoint(input: CreateEndpointInput): Promise<CreateEndpointResult> {
    assertId(input.endpointId, 'endpoint id');
    await this.dirs();
    const net = await this.network(input.networkId);
    const { address, addressIPv6, macAddress } = input.interface;
    checkCidr(address, false, 'endpoint address');
    checkCidr(addressIPv6, true, 'endpoint IPv6 address');
    if (macAddress !== '' && !MAC.test(macAddress)) {
      throw new FlatnetError('invalid', `The MAC address "${macAddress}" is not in colon form.`);
    }
    const mac =
      macAddress !== '' ? macAddress.toLowerCase() : deriveEndpointMac(address, addressIPv6, input.endpointId);
    const names = vethNames(input.endpointId);
    await this.state.putEndpoint({
      endpointId: input.endpointId,
      networkId: input.networkId,
      address,
      addressIPv6,
      macAddress: mac,
      hostIfname: names.host,
      containerIfname: names.container,
      createdAt: new Date().toISOString(),
    });
    this.prepareVeth(input.endpointId, { names, bridge: net.bridge, mtu: net.mtu, mac });
    this.tellOwners(() =>
      this.owners?.created({
        networkId: input.networkId,
        endpointId: input.endpointId,
        addresses: [address, addressIPv6],
      }),
    );
    // Docker refuses a reply that repeats or changes a field it sent.
    return { interface: macAddress !== '' ? null : { macAddress: mac } };
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    assertId(endpointId, 'endpoint id');
    await this.dirs();
    // Docker calls Leave first for a joined endpoint; without a Leave seen (a restart between), remove anyway.
    if (!this.left.delete(endpointId)) this.removeVethInBackground(endpointId);
    this.tellOwners(() => this.owners?.removed(endpointId));
    await this.state.deleteEndpoint(endpointId);
  }

  async endpointOperInfo(_networkId: string, _endpointId: string): Promise<Record<string, unknown>> {
    return {};
  }

  async join(input: JoinInput): Promise<JoinResult> {
    assertId(input.endpointId, 'endpoint id');
    await this.dirs();
    const ep = await this.state.getEndpoint(input.endpointId);
    if (ep === undefined) {
      throw new FlatnetError(
        'not-found',
        `Endpoint ${input.endpointId.slice(0, 12)} is unknown on this host; reconnect the container.`,
      );
    }
    const net = await this.network(ep.networkId);
    const names = vethNames(input.endpointId);
    await this.removals.get(input.endpointId);
    this.left.delete(input.endpointId);
    const ahead = this.prepared.get(input.endpointId);
    this.prepared.delete(input.endpointId);
    if (ahead === undefined || !(await ahead))
      await createVeth(this.ip, { names, bridge: net.bridge, mtu: net.mtu, mac: ep.macAddress });
    this.tellOwners(() => this.owners?.joined(ep.networkId, input.endpointId));
    const gatewayIPv6 = ep.addressIPv6 !== '' ? net.gatewayIPv6 : '';
    if (this.announcer !== undefined && input.sandboxKey !== '' && (ep.address !== '' || ep.addressIPv6 !== '')) {
      // Started before the reply, not after it: deferred with afterReply(), Join's own time fell (7.9 -> 6.6 ms
      // median) but `docker run` got slower (1.17-1.18 vs 1.14 against the bridge, same machine): its spawns then
      // compete with Docker's sandbox setup.
      this.track(
        this.announcer.announce(input.sandboxKey, {
          ...(ep.address !== '' ? { ipv4: bareIp(ep.address, false, 'endpoint address') } : {}),
          ...(ep.addressIPv6 !== '' ? { ipv6: bareIp(ep.addressIPv6, true, 'endpoint IPv6 address') } : {}),
        }),
      );
    }
    return {
      srcName: names.container,
      dstPrefix: 'eth',
      gateway: net.gateway,
      gatewayIPv6,
      staticRoutes: [],
      disableGatewayService: net.gateway === '' && gatewayIPv6 === '',
    };
  }

  /**
   * Docker needs the pair only at Join, and between CreateEndpoint and Join it builds the sandbox: making the pair
   * meanwhile takes the `ip` spawn (the largest part of Join) off the path of a container start. A failure here
   * is only logged: Join then makes the pair itself and reports what goes wrong.
   */
  private prepareVeth(endpointId: string, spec: VethSpec): void {
    const made = afterReply()
      .then(() => createVeth(this.ip, spec))
      .then(
        () => true,
        (err: unknown) => {
          this.logger.debug(
            { endpoint: endpointId.slice(0, 12), err: errorMessage(err) },
            'could not make the veth ahead of Join',
          );
          return false;
        },
      );
    this.prepared.set(endpointId, made);
    this.track(made.then(() => undefined));
  }

  /** The owner hook must never cost a plugin call. */
  private tellOwners(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, 'owner hook failed');
    }
  }

  private track(p: Promise<void>): void {
    const tracked = p.finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async leave(_networkId: string, endpointId: string): Promise<void> {
    assertId(endpointId, 'endpoint id');
    this.left.add(endpointId);
    this.removeVethInBackground(endpointId);
  }

  /**
   * Deleting a veth waits for the kernel's RCU grace periods (about 20 ms here), and Docker waits for Leave and
   * DeleteEndpoint before `docker run --rm` or `docker stop` returns. The names are unique per endpoint, so
   * nothing can reuse them meanwhile; a removal cut short by a crash is finished by reconcile() at start.
   */
  private removeVethInBackground(endpointId: string): void {
    if (this.removals.has(endpointId)) return;
    // A pair still being made ahead is removed once it exists, or it would outlive its endpoint.
    const ahead = this.prepared.get(endpointId);
    this.prepared.delete(endpointId);
    // After the reply to Docker: the removal waits on the kernel, and a spawn (no session) forks the server.
    const removal = Promise.all([ahead, afterReply()])
      .then(() => deleteVeth(this.ip, vethNames(endpointId)))
      .catch((err: unknown) =>
        this.logger.warn({ endpoint: endpointId.slice(0, 12), err: errorMessage(err) }, 'could not remove the veth'),
      )
      .finally(() => this.removals.delete(endpointId));
    this.removals.set(endpointId, removal);
    this.track(removal);
  }
}
