import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { onPath } from './exec.js';
import type { IpRunner } from './ip-runner.js';
import { assertIfName } from './names.js';

export const RULE_COMMENT = 'flatnet';

/** The FORWARD rule (without the -C/-I/-D verb) that lets bridged container frames past br_netfilter. */
export function forwardAcceptRule(bridge: string): string[] {
  assertIfName(bridge, 'bridge name');
  return ['-i', bridge, '-o', bridge, '-m', 'comment', '--comment', RULE_COMMENT, '-j', 'ACCEPT'];
}

const BINARIES = ['iptables', 'ip6tables'] as const;

/**
 * With br_netfilter loaded, frames crossing a bridge traverse the FORWARD chain, whose policy dockerd (with
 * iptables on) sets to DROP. Inserts the bridge-to-bridge ACCEPT at the top unless it is already there.
 * Skipped when iptables is not installed; an ip6tables failure is only logged (IPv6 may be off).
 */
export async function ensureForwardAccept(ip: IpRunner, bridge: string, logger?: Logger): Promise<void> {
  const rule = forwardAcceptRule(bridge);
  for (const bin of BINARIES) {
    if (!(await onPath(bin))) {
      logger?.debug({ bin }, 'not installed; no FORWARD rule needed');
      continue;
    }
    const check = await ip.xtables(bin, ['-w', '-C', 'FORWARD', ...rule]);
    if (check.code === 0) continue;
    const insert = await ip.xtables(bin, ['-w', '-I', 'FORWARD', '1', ...rule]);
    if (insert.code === 0) {
      logger?.info({ bin, bridge }, 'FORWARD accept rule for the bridge added');
      continue;
    }
    const msg = insert.stderr.trim() || `exit ${insert.code}`;
    if (bin === 'ip6tables') {
      logger?.warn({ bin, bridge, err: msg }, 'could not add the IPv6 FORWARD accept rule');
      continue;
    }
    throw new FlatnetError(
      'unavailable',
      `Could not add the iptables rule "FORWARD ${rule.join(' ')}" (${msg}); bridged container traffic may be dropped.`,
    );
  }
}

/** Deletes every copy of the rule (a crash between -C and -I elsewhere could have left two). */
export async function removeForwardAccept(ip: IpRunner, bridge: string, logger?: Logger): Promise<void> {
  const rule = forwardAcceptRule(bridge);
  for (const bin of BINARIES) {
    if (!(await onPath(bin))) continue;
    for (let i = 0; i < 16; i++) {
      const del = await ip.xtables(bin, ['-w', '-D', 'FORWARD', ...rule]);
      if (del.code !== 0) break;
      logger?.info({ bin, bridge }, 'FORWARD accept rule for the bridge removed');
    }
  }
}
