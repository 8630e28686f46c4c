import { existsSync } from 'node:fs';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { sleepUnlessAborted } from '../util/abortable-sleep.js';
import type { Logger } from '../observability/logger.js';
import { onPath } from './exec.js';
import type { IpRunner } from './ip-runner.js';
import { isValidIfName } from './names.js';

const sandboxAddrSchema = z.array(
  z.object({
    ifname: z.string(),
    flags: z.array(z.string()).default([]),
    addr_info: z.array(z.object({ local: z.string(), tentative: z.boolean().optional() })).default([]),
  }),
);

/** The up interface holding `address` in `ip -j addr` output, or undefined while Docker is still setting it up. */
export function ifnameHolding(addrJson: unknown, address: string): string | undefined {
  const parsed = sandboxAddrSchema.safeParse(addrJson);
  if (!parsed.success) return undefined;
  const link = parsed.data.find(
    (l) => l.flags.includes('UP') && l.addr_info.some((a) => a.local === address && a.tentative !== true),
  );
  return link !== undefined && isValidIfName(link.ifname) ? link.ifname : undefined;
}

export interface AnnounceOptions {
  /** How long to wait for Docker to move and configure the interface (after settleMs). */
  timeoutMs?: number;
  intervalMs?: number;
  /**
   * The wait before the first look into the sandbox (default 1000 ms). The looks and arping are process spawns;
   * made while Docker starts the container, they slowed `docker run` (measured), and a container gone by then
   * needs no announcement. The cooldown keeps a released address unused for minutes, so a neighbour's stale
   * entry for it is long gone: a second later costs nobody anything.
   */
  settleMs?: number;
}

/** What to announce for one container: its IPv4 address with gratuitous ARP, its IPv6 one with an unsolicited NA. */
export interface AnnounceTarget {
  ipv4?: string;
  ipv6?: string;
}

/** argv of iputils/busybox arping for a gratuitous ARP (unsolicited, 2 of them). */
export function arpingArgs(ifname: string, address: string): string[] {
  return ['-U', '-c', '2', '-I', ifname, address];
}

/**
 * argv of ipv6toolkit's na6 for one unsolicited neighbour advertisement (RFC 4861 7.2.6): to all nodes, from
 * and for the address, Override set, with the interface's MAC as target link-layer address.
 */
export function na6Args(ifname: string, address: string): string[] {
  return ['-i', ifname, '-s', address, '-d', 'ff02::1', '-t', address, '-o', '-e'];
}

/**
 * Announces a container that just joined, so LAN neighbours that cached its address on another host (or another
 * MAC) learn where it is now: gratuitous ARP for IPv4, an unsolicited neighbour advertisement for IPv6, both run
 * inside the container's sandbox. Best effort: never throws.
 */
export class Announcer {
  private arping: Promise<string[] | undefined> | undefined;
  private na6: Promise<boolean> | undefined;
  private readonly warnedMissing = new Set<string>();
  /** Aborted by stop(): a pending wait ends at once (shutdown does not sit out a settle delay). */
  private readonly stopping = new AbortController();

  constructor(
    private readonly ip: IpRunner,
    private readonly logger: Logger,
    private readonly options: AnnounceOptions = {},
  ) {}

  /** Debian's iputils-arping, else busybox's applet; undefined when neither exists. */
  private arpingCommand(): Promise<string[] | undefined> {
    this.arping ??= (async () => {
      if (await onPath('arping')) return ['arping'];
      if (await onPath('busybox')) return ['busybox', 'arping'];
      return undefined;
    })();
    return this.arping;
  }

  private hasNa6(): Promise<boolean> {
    this.na6 ??= onPath('na6');
    return this.na6;
  }

  private warnMissing(tool: string, what: string): void {
    if (this.warnedMissing.has(tool)) return;
    this.warnedMissing.add(tool);
    this.logger.warn(`${tool} is not installed; containers are not announced with ${what}`);
  }

  /** No new look or announcement; waits under way end now. */
  stop(): void {
    this.stopping.abort();
  }

  async announce(sandboxKey: string, target: AnnounceTarget): Promise<void> {
    const address = target.ipv4 ?? target.ipv6;
    if (address === undefined) return;
    try {
      const arping = target.ipv4 !== undefined ? await this.arpingCommand() : undefined;
      if (target.ipv4 !== undefined && arping === undefined) this.warnMissing('arping', 'gratuitous ARP');
      const na6 = target.ipv6 !== undefined && (await this.hasNa6());
      if (target.ipv6 !== undefined && !na6) this.warnMissing('na6 (ipv6toolkit)', 'IPv6 neighbour advertisements');
      if (arping === undefined && !na6) return;
      const ifname = await this.waitForAddress(sandboxKey, address);
      if (ifname === undefined) {
        // A container that already exited (its sandbox is gone) has nothing to announce.
        if (existsSync(sandboxKey))
          this.logger.warn({ sandboxKey, address }, 'address did not come up in the sandbox in time; not announced');
        return;
      }
      if (arping !== undefined && target.ipv4 !== undefined) {
        const [file, ...pre] = arping as [string, ...string[]];
        await this.send(sandboxKey, file, [...pre, ...arpingArgs(ifname, target.ipv4)], target.ipv4, 'gratuitous ARP');
      }
      if (na6 && target.ipv6 !== undefined) {
        await this.send(sandboxKey, 'na6', na6Args(ifname, target.ipv6), target.ipv6, 'neighbour advertisement');
      }
    } catch (err) {
      this.logger.warn({ sandboxKey, address, err: errorMessage(err) }, 'announcement failed');
    }
  }

  private async send(sandboxKey: string, file: string, args: string[], address: string, what: string): Promise<void> {
    const res = await this.ip.inNetns(sandboxKey, file, args);
    if (res.code !== 0) {
      this.logger.warn({ sandboxKey, address, err: res.stderr.trim() }, `${what} failed`);
      return;
    }
    this.logger.debug({ sandboxKey, address }, `container announced (${what})`);
  }

  /**
   * Polls with a growing interval (each poll is a process spawn, competing with the container's own start) and
   * gives up at once when the sandbox is gone: short-lived containers must not leave a poller behind.
   * Docker 20.10 makes the sandbox file only after Join (runc's prestart hook binds the container's netns to
   * the key and moves the interface in then, later than settleMs on a loaded host), so a sandbox not there yet
   * is waited for, without a spawn.
   */
  private async waitForAddress(sandboxKey: string, address: string): Promise<string | undefined> {
    const base = this.options.intervalMs ?? 100;
    const settle = this.options.settleMs ?? 1000;
    const deadline = Date.now() + settle + (this.options.timeoutMs ?? 5000);
    let wait = Math.max(settle, base);
    let interval = base;
    let seen = false;
    while (Date.now() < deadline) {
      if (!(await sleepUnlessAborted(wait, this.stopping.signal))) return undefined;
      interval = Math.min(interval * 2, 1000);
      wait = interval;
      if (!existsSync(sandboxKey)) {
        if (seen) return undefined;
        interval = base;
        wait = base;
        continue;
      }
      seen = true;
      const res = await this.ip.inNetns(sandboxKey, 'ip', ['-j', 'addr', 'show']);
      if (res.code === 0) {
        try {
          const ifname = ifnameHolding(JSON.parse(res.stdout) as unknown, address);
          if (ifname !== undefined) return ifname;
        } catch {
          // half-written output while links change: try again
        }
      }
    }
    return undefined;
  }
}
