import type { Settings } from '../config/settings.js';
import { ArpProber } from '../hostnet/arp-probe.js';
import { parsePoolId } from '../ipam/core/pool-id.js';
import type { IpamStores } from '../ipam/ports.js';
import { ConflictService } from '../ipam/services/conflict-service.js';
import { DriverState } from '../netdriver/state.js';
import type { Logger } from '../observability/logger.js';
import { formatSubnet, parseSubnet } from '../net/address.js';
import { ConflictProber, type ConflictProberDeps, type ConflictProberOptions } from './conflict-prober.js';

/** The prober's host-local side, replaceable where there is no bridge to probe from (the scale bench). */
export type ProberLinkPorts = Partial<Pick<ConflictProberDeps, 'bridgeFor' | 'probe' | 'localNetworks'>>;

/**
 * The production wiring of the conflict probe: this host's pools from its claims in etcd, each pool's bridge from
 * the network driver's records in the state dir, `arping -D` from that bridge, conflict records through the IPAM.
 * `upcoming` is the IPAM driver's (its allocator's view of what it hands out next); `link` replaces the local side.
 */
export function hostConflictProber(
  stores: IpamStores,
  settings: Pick<Settings, 'hostId' | 'stateDir'>,
  upcoming: (poolId: string, n: number) => Promise<string[]>,
  logger: Logger,
  options: Partial<ConflictProberOptions> = {},
  link: ProberLinkPorts = {},
): ConflictProber {
  const state = new DriverState(settings.stateDir);
  const arp = new ArpProber();
  const conflicts = new ConflictService(stores);
  return new ConflictProber(
    {
      hostId: settings.hostId,
      pools: async () =>
        (await stores.pools.readAll()).flatMap((p) =>
          p.config.claims.filter((c) => c.hostId === settings.hostId).map((c) => c.poolId),
        ),
      bridgeFor: async (subnet) => {
        const networks = await state.listNetworks().catch(() => []);
        return networks.find((n) => canonical(n.pool) === subnet)?.bridge;
      },
      upcoming,
      probe: (ifname, address) => arp.probe(ifname, address),
      record: (poolId, address, seen) => conflicts.record(parsePoolId(poolId), poolId, address, seen),
      logger: logger.child({ component: 'conflict-probe' }),
      localNetworks: async () =>
        (await state.listNetworks().catch(() => []))
          .map((n) => `${n.networkId}:${n.pool}:${n.bridge}`)
          .sort()
          .join(','),
      ...link,
    },
    options,
  );
}

/** A network record's pool as pools are named (Docker may send it as written); '' when none or malformed. */
function canonical(pool: string): string {
  try {
    return pool === '' ? '' : formatSubnet(parseSubnet(pool));
  } catch {
    return '';
  }
}
