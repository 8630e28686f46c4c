import { FlatnetError, errorMessage } from '../errors.js';
import { Announcer } from '../hostnet/announce.js';
import { IpRunner } from '../hostnet/ip-runner.js';
import { recoverTakeovers } from '../hostnet/takeover-intent.js';
import { vethNames } from '../hostnet/names.js';
import { bareAddress, isCidr, type Family } from '../net/address.js';
import { MAC_ADDRESS } from '../net/ids.js';
import type { Logger } from '../observability/logger.js';
import { BackgroundWork } from '../util/background-work.js';
import type { EndpointOwnerHook } from './endpoint-owner-hook.js';
import { EndpointVeths } from './endpoint-veths.js';
import { HeldBridges } from './held-bridges.js';
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

/** An address of `family` as Docker sends it ('' for none), without its prefix. */
function plainAddress(text: string | undefined, family: Family, what: string): string {
  try {
    return bareAddress(text ?? '', family);
  } catch {
    throw new FlatnetError('invalid', `The ${what} "${text ?? ''}" is not a valid IPv${family} address.`);
  }
}

/** An endpoint address as Docker sends it: '' or an address of `family` with its prefix. */
function checkEndpointCidr(text: string, family: Family, what: string): void {
  if (text === '') return;
  if (!isCidr(text)) throw new FlatnetError('invalid', `The ${what} "${text}" is not an address in CIDR form.`);
  plainAddress(text, family, what);
}

/**
 * NetworkDriver over a host bridge that holds the LAN NIC: networks are records pointing at the bridge,
 * endpoints are veth pairs with one end in the bridge. All state is host-local and written before replying;
 * what can wait (veth pairs, bridge checks, fsyncs, announcements) runs off the path in classes of its own.
 */
export class HostNetworkDriver implements NetworkDriver {
  private readonly state: DriverState;
  private readonly ip: IpRunner;
  private readonly logger: Logger;
  private readonly announcer: Announcer | undefined;
  private readonly work: BackgroundWork;
  private readonly bridges: HeldBridges;
  private readonly veths: EndpointVeths;
  private readonly owners: EndpointOwnerHook | undefined;
  private ready: Promise<void> | undefined;
  private dirsReady: Promise<void> | undefined;

  constructor(options: HostNetworkDriverOptions) {
    this.owners = options.owners;
    this.state = new DriverState(options.stateDir);
    this.ip = options.ip ?? new IpRunner();
    this.logger = options.logger;
    this.work = new BackgroundWork(this.logger);
    this.bridges = new HeldBridges(this.ip, this.state.stateDir, this.work, this.logger);
    this.veths = new EndpointVeths(this.ip, this.work, this.logger);
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
    await this.bridges.restore(pairs.values());
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
    await this.work.stop();
    this.ip.close();
  }

  /** Resolves when every background announcement and veth removal started so far has finished (tests, shutdown). */
  idle(): Promise<void> {
    return this.work.idle();
  }

  async createNetwork(input: CreateNetworkInput): Promise<void> {
    assertId(input.networkId, 'network id');
    const opts = parseNetworkOptions(input.generic);
    refuseUnsupportedNetwork(input);
    const v4 = input.ipv4Data[0];
    const v6 = input.ipv6Data[0];
    const gateway = plainAddress(v4?.gateway, 4, 'IPv4 gateway');
    const gatewayIPv6 = plainAddress(v6?.gateway, 6, 'IPv6 gateway');
    await this.dirs();
    if ((await this.state.getNetwork(input.networkId)) !== undefined) return;
    await this.bridges.use(opts.bridge, opts.parent, opts.mtu, async ({ parent, parentMtu }) => {
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
      // On disk before the reply (a killed plugin finds it at its start), durable right after it. A power loss in
      // between can lose the record of a network whose `docker network create` had just returned (README, Limits).
      await this.state.putNetwork(record, { durable: false });
      void this.work.afterReply('fsync of a network record (on disk, may not survive a power loss)', () =>
        this.state.syncNetwork(record.networkId),
      );
      this.logger.info(
        { networkId: input.networkId, bridge: record.bridge, parent, mtu: record.mtu },
        'network created',
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
    checkEndpointCidr(address, 4, 'endpoint address');
    checkEndpointCidr(addressIPv6, 6, 'endpoint IPv6 address');
    if (macAddress !== '' && !MAC_ADDRESS.test(macAddress)) {
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
    this.veths.prepare(input.endpointId, { names, bridge: net.bridge, mtu: net.mtu, mac });
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
    this.veths.deleted(endpointId);
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
    await this.veths.ready(input.endpointId, { names, bridge: net.bridge, mtu: net.mtu, mac: ep.macAddress });
    this.tellOwners(() => this.owners?.joined(ep.networkId, input.endpointId));
    const gatewayIPv6 = ep.addressIPv6 !== '' ? net.gatewayIPv6 : '';
    if (this.announcer !== undefined && input.sandboxKey !== '' && (ep.address !== '' || ep.addressIPv6 !== '')) {
      // Started before the reply: deferred, its spawns compete with Docker's sandbox setup (README, Benchmarks).
      const announcer = this.announcer;
      const addresses = {
        ...(ep.address !== '' ? { ipv4: plainAddress(ep.address, 4, 'endpoint address') } : {}),
        ...(ep.addressIPv6 !== '' ? { ipv6: plainAddress(ep.addressIPv6, 6, 'endpoint IPv6 address') } : {}),
      };
      void this.work.run('announcement', () => announcer.announce(input.sandboxKey, addresses));
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

  /** The owner hook must never cost a plugin call. */
  private tellOwners(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, 'owner hook failed');
    }
  }

  async leave(_networkId: string, endpointId: string): Promise<void> {
    assertId(endpointId, 'endpoint id');
    this.veths.leave(endpointId);
  }
}
