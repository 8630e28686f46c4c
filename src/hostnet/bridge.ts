import { FlatnetError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { bridgeNic, nicPorts, portsOf } from './bridge-ports.js';
import { linkAddrs, linkRoutes, listLinks, type LinkInfo } from './ip-json.js';
import { IpRunner } from './ip-runner.js';
import { removeForwardAccept } from './iptables.js';
import { assertIfName } from './names.js';
import { planRestore, planTakeover, type TakeoverInput } from './plan.js';
import { RollbackIncompleteError, runSteps, type Step } from './steps.js';
import { removeIntent, writeIntent } from './takeover-intent.js';

export interface TakeoverOptions {
  bridge: string;
  parent: string;
  logger?: Logger;
  /** The host's links as the caller just listed them (saves listing them again). */
  links?: readonly LinkInfo[];
  /**
   * Where the intent record goes while the batch runs (the server's state dir), so that a takeover cut short
   * by a crash is finished or rolled back at the next start (recoverTakeovers). Absent = no record.
   */
  intentDir?: string;
}

interface TakeoverPlan {
  steps: Step[];
  input?: TakeoverInput;
}

/**
 * Reads the host as it is (or takes `links`, listed a moment ago) and returns the takeover steps, or [] when
 * the bridge already holds the NIC.
 */
export async function planBridgeTakeover(
  ip: IpRunner,
  bridge: string,
  parent: string,
  links?: readonly LinkInfo[],
): Promise<Step[]> {
  return (await planWithInput(ip, bridge, parent, links)).steps;
}

async function planWithInput(
  ip: IpRunner,
  bridge: string,
  parent: string,
  links?: readonly LinkInfo[],
): Promise<TakeoverPlan> {
  assertIfName(bridge, 'bridge name');
  assertIfName(parent, 'parent interface name');
  if (bridge === parent) throw new FlatnetError('invalid', `The bridge and the parent interface are both "${bridge}".`);
  links ??= await listLinks(ip);
  const nic = links.find((l) => l.ifname === parent);
  if (nic === undefined) {
    throw new FlatnetError(
      'not-found',
      `The parent interface "${parent}" does not exist; pass an existing NIC with -o parent=NAME.`,
    );
  }
  if (nic.master === bridge) return { steps: [] };
  if (nic.master !== undefined) {
    throw new FlatnetError(
      'conflict',
      `The parent interface "${parent}" is already enslaved to "${nic.master}", not to "${bridge}".`,
    );
  }
  if (nic.linkinfo?.info_kind === 'bridge') {
    throw new FlatnetError(
      'invalid',
      `The parent "${parent}" is itself a bridge; name the physical NIC it holds with -o parent=NAME.`,
    );
  }
  const existing = links.find((l) => l.ifname === bridge);
  if (existing !== undefined && existing.linkinfo?.info_kind !== 'bridge') {
    throw new FlatnetError(
      'conflict',
      `"${bridge}" exists and is not a bridge; choose another name with -o bridge=NAME.`,
    );
  }
  // Two NICs in one bridge with STP off would join two LAN segments (and a loop, if they meet).
  const otherNic = nicPorts(portsOf(links, bridge)).find((p) => p !== parent);
  if (otherNic !== undefined) {
    throw new FlatnetError(
      'conflict',
      `"${bridge}" already holds "${otherNic}"; give "${parent}" a bridge of its own with -o bridge=NAME.`,
    );
  }
  const [nicAddrs, nicRoutes] = await Promise.all([linkAddrs(ip, parent), linkRoutes(ip, parent)]);
  const input: TakeoverInput = { bridge, nic, ...(existing ? { existingBridge: existing } : {}), nicAddrs, nicRoutes };
  return { steps: planTakeover(input), input };
}

/**
 * Makes `bridge` hold `parent`, moving the NIC's addresses, routes, MAC and MTU to it in one ip batch;
 * on any failure the host is put back as it was. Returns whether anything changed.
 */
export async function ensureBridge(ip: IpRunner, options: TakeoverOptions): Promise<boolean> {
  const { steps, input } = await planWithInput(ip, options.bridge, options.parent, options.links);
  if (steps.length === 0 || input === undefined) return false;
  const intent =
    options.intentDir === undefined
      ? undefined
      : await writeIntent(options.intentDir, {
          kind: 'bridge-takeover',
          bridge: options.bridge,
          parent: options.parent,
          pid: process.pid,
          startedAt: new Date().toISOString(),
          snapshot: {
            nic: input.nic,
            ...(input.existingBridge ? { existingBridge: input.existingBridge } : {}),
            nicAddrs: [...input.nicAddrs],
            nicRoutes: { v4: [...input.nicRoutes.v4], v6: [...input.nicRoutes.v6] },
          },
          steps: steps.map((s) => ({ name: s.name, do: [...s.do], undo: s.undo.map((c) => [...c]) })),
        });
  try {
    await runSteps(ip, steps, options.logger ? { logger: options.logger } : {});
  } catch (err) {
    // Rolled back: nothing is left to recover. Not undone completely: the record stays for the next start.
    if (intent !== undefined && !(err instanceof RollbackIncompleteError)) await removeIntent(intent);
    throw err;
  }
  if (intent !== undefined) await removeIntent(intent);
  options.logger?.info(
    { bridge: options.bridge, parent: options.parent, steps: steps.length },
    'bridge took over the NIC',
  );
  return true;
}

export interface RestoreOptions {
  bridge: string;
  /** The NIC the bridge holds; absent = its only port that is not a flatnet veth. */
  parent?: string;
  /** Remove the bridge even though container veths are still attached (they lose the LAN). */
  force?: boolean;
  ip?: IpRunner;
  logger?: Logger;
}

/** What restoreBridge did: nothing (no such bridge), or gave `parent` its addresses back. */
export type RestoreResult = { removed: false } | { removed: true; parent: string };

/**
 * Undoes the takeover for `flatnet bridge restore`: addresses and routes back to the NIC, the bridge and
 * its FORWARD rules removed. Does nothing when the bridge is already gone.
 */
export async function restoreBridge(options: RestoreOptions): Promise<RestoreResult> {
  const ip = options.ip ?? new IpRunner();
  const { bridge } = options;
  assertIfName(bridge, 'bridge name');
  if (options.parent !== undefined) assertIfName(options.parent, 'parent interface name');
  const links = await listLinks(ip);
  const br = links.find((l) => l.ifname === bridge);
  if (br === undefined) {
    await removeForwardAccept(ip, bridge, options.logger);
    return { removed: false };
  }
  if (br.linkinfo?.info_kind !== 'bridge') throw new FlatnetError('invalid', `"${bridge}" is not a bridge.`);
  const parent = options.parent ?? bridgeNic(portsOf(links, bridge));
  if (parent === undefined) {
    throw new FlatnetError(
      'invalid',
      `Cannot tell which NIC "${bridge}" holds (no port, or several, that is not a flatnet veth); name it with --parent.`,
    );
  }
  const nic = links.find((l) => l.ifname === parent);
  if (nic === undefined) throw new FlatnetError('not-found', `The parent interface "${parent}" does not exist.`);
  if (nic.master !== bridge) {
    throw new FlatnetError('conflict', `"${parent}" is not a port of "${bridge}"; name the NIC the bridge holds.`);
  }
  const others = portsOf(links, bridge).filter((p) => p !== parent);
  if (others.length > 0 && options.force !== true) {
    throw new FlatnetError(
      'conflict',
      `"${bridge}" still has ports ${others.join(', ')} (containers?); stop them first or force the restore.`,
    );
  }
  const [bridgeAddrs, bridgeRoutes] = await Promise.all([linkAddrs(ip, bridge), linkRoutes(ip, bridge)]);
  const steps = planRestore({ bridge, nic: parent, bridgeAddrs, bridgeRoutes });
  await runSteps(ip, steps, options.logger ? { logger: options.logger } : {});
  await removeForwardAccept(ip, bridge, options.logger);
  options.logger?.info({ bridge, parent }, 'bridge removed; NIC holds its addresses again');
  return { removed: true, parent };
}
