/**
 * Whether flatnet announces a container that joined. Docker 28 and later send unsolicited ARP (IPv4) and
 * neighbour advertisements (IPv6) themselves after configuring every container interface, whatever the driver:
 * 3 messages 1 s apart by default, or as many as the network option com.docker.network.advertise_addr_nmsgs
 * says (0 = none). Older engines (20.10) send none. While the engine is unknown flatnet announces: a double
 * announcement is harmless, a missing one leaves neighbours with a stale cache entry.
 */

/** The first engine release that announces container addresses itself. */
export const ENGINE_ANNOUNCES_FROM_MAJOR = 28;
export const ADVERTISE_NMSGS_OPTION = 'com.docker.network.advertise_addr_nmsgs';

export interface AnnouncePlan {
  /** Gratuitous ARP for the IPv4 address. */
  arp: boolean;
  /** Unsolicited neighbour advertisement for the IPv6 address. */
  na: boolean;
}

/** The engine's announcements as the network asks for them: undefined when the option is absent or unreadable. */
export function advertiseMessages(generic: Readonly<Record<string, string>>): number | undefined {
  const raw = generic[ADVERTISE_NMSGS_OPTION]?.trim();
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

export function announcePlan(
  engineMajor: number | undefined,
  generic: Readonly<Record<string, string>>,
  addresses: { ipv4: boolean; ipv6: boolean },
): AnnouncePlan {
  const engineAnnounces = engineMajor !== undefined && engineMajor >= ENGINE_ANNOUNCES_FROM_MAJOR && advertiseMessages(generic) !== 0;
  return { arp: addresses.ipv4 && !engineAnnounces, na: addresses.ipv6 && !engineAnnounces };
}
