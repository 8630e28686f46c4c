import { existsSync } from 'node:fs';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { onPath } from './exec.js';
import type { IpRunner } from './ip-runner.js';
import { isValidIfName } from './names.js';

const sandboxAddrSchema = z.array(
  z.object({
    ifname: z.string(),
    flags: z.array(z.string()).default([]),
    addr_info: z
      .array(z.object({ local: z.string(), tentative: z.boolean().optional() }))
      .default([]),
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
  /** How long to wait for Docker to move and configure the interface. */
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Gratuitous ARP for a container that just joined, so LAN neighbours that cached the address on another
 * host (or another MAC) learn where it is now. Best effort: never throws.
 */
export class Announcer {
  private arping: Promise<string[] | undefined> | undefined;
  private warnedMissing = false;

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

  async announce(sandboxKey: string, address: string): Promise<void> {
    try {
      const arping = await this.arpingCommand();
      if (arping === undefined) {
        if (!this.warnedMissing) this.logger.warn('arping is not installed; containers are not announced with gratuitous ARP');
        this.warnedMissing = true;
        return;
      }
      const ifname = await this.waitForAddress(sandboxKey, address);
      if (ifname === undefined) {
        // A container that already exited (its sandbox is gone) has nothing to announce.
        if (existsSync(sandboxKey)) this.logger.warn({ sandboxKey, address }, 'address did not come up in the sandbox in time; not announced');
        return;
      }
      const [file, ...pre] = arping as [string, ...string[]];
      const res = await this.ip.inNetns(sandboxKey, file, [...pre, '-U', '-c', '2', '-I', ifname, address]);
      if (res.code !== 0) {
        this.logger.warn({ sandboxKey, address, err: res.stderr.trim() }, 'gratuitous ARP failed');
        return;
      }
      this.logger.debug({ sandboxKey, address, ifname }, 'container announced');
    } catch (err) {
      this.logger.warn({ sandboxKey, address, err: errorMessage(err) }, 'gratuitous ARP failed');
    }
  }

  /**
   * Polls with a growing interval (each poll is a process spawn, competing with the container's own start) and
   * gives up at once when the sandbox is gone: short-lived containers must not leave a poller behind.
   */
  private async waitForAddress(sandboxKey: string, address: string): Promise<string | undefined> {
    const deadline = Date.now() + (this.options.timeoutMs ?? 5000);
    let interval = this.options.intervalMs ?? 100;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, interval));
      interval = Math.min(interval * 2, 1000);
      if (!existsSync(sandboxKey)) return undefined;
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
