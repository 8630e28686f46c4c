import type { Settings } from '../config/settings.js';
import { ArpProber } from '../hostnet/arp-probe.js';
import { parsePoolId } from '../ipam/core/pool-id.js';
import type { IpamStores, PoolWatch, PoolWatchEvents } from '../ipam/ports.js';
import { ConflictService } from '../ipam/services/conflict-service.js';
import { DriverState } from '../netdriver/state.js';
import type { Logger } from '../observability/logger.js';
import { formatSubnet, parseSubnet } from '../net/address.js';
import { ConflictProber, type ConflictProberDeps, type ConflictProberOptions } from './conflict-prober.js';

/** The prober's host-local side, replaceable where there is no bridge to probe from (the scale bench). */
export type ProberLinkPorts = Partial<Pick<ConflictProberDeps, 'bridgeFor' | 'probe' | 'localNetworks'>>;

/**
 * The production wiring of the conflict probe: this host's pools from its own claim keys in etcd (never the other
 * hosts'), each pool's bridge from the network driver's records in the state dir, `arping -D` from that bridge,
 * conflict records through the IPAM. `upcoming` is the IPAM driver's (its allocator's view of what it hands out
 * next); `link` replaces the local side. `watchPools`: how the prober hears of other hosts' changes to its pools'
 * configs (a watch, not a re-read).
 */
export function hostConflictProber(
  stores: IpamStores,
  settings: Pick<Settings, 'hostId' | 'stateDir'>,
  upcoming: (poolId: string, n: number) => Promise<string[]>,
  logger: Logger,
  options: Partial<ConflictProberOptions> = {},
  link: ProberLinkPorts = {},
  watchPools?: (events: PoolWatchEvents) => PoolWatch,
): ConflictProber {
  const state = new DriverState(settings.stateDir);
  const arp = new ArpProber();
  const conflicts = new ConflictService(stores);
  let prober: ConflictProber | undefined;
  const watch = watchPools?.({
    changed: (subnet) => prober?.poolChanged(formatSubnet(subnet)),
    resync: () => prober?.resync(),
  });
  prober = new ConflictProber(
    {
      hostId: settings.hostId,
      pools: async () => (await stores.pools.claimsOf(settings.hostId)).map((c) => c.poolId),
      ...(watch ? { watch } : {}),
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
  return prober;
}

/** A network record's pool as pools are named (Docker may send it as written); '' when none or malformed. */
function canonical(pool: string): string {
  try {
    return pool === '' ? '' : formatSubnet(parseSubnet(pool));
  } catch {
    return '';
  }
}
