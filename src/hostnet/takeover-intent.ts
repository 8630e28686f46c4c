import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FlatnetError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import {
  addrInfoSchema,
  linkAddrs,
  linkRoutes,
  linkSchema,
  listLinks,
  routeSchema,
  type AddrInfo,
  type RouteInfo,
} from './ip-json.js';
import type { IpRunner } from './ip-runner.js';
import { assertIfName } from './names.js';
import { movableAddrs, movableRoutes } from './plan.js';
import { rollbackCommands } from './steps.js';

/**
 * The takeover is one `ip -batch`, but a kill -9 (or a systemd stop that kills the whole group) between two of
 * its lines leaves the NIC half moved. Before the batch an intent record is written, atomically, in the state
 * directory: the NIC's snapshot and the planned steps with their undo commands. It is removed once the
 * takeover completed or was rolled back, so a record found at start means the batch was cut short.
 */

const stepSchema = z.object({ name: z.string(), do: z.array(z.string()), undo: z.array(z.array(z.string())) });

export const intentSchema = z.object({
  kind: z.literal('bridge-takeover'),
  bridge: z.string(),
  parent: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  snapshot: z.object({
    nic: linkSchema,
    existingBridge: linkSchema.optional(),
    nicAddrs: z.array(addrInfoSchema),
    nicRoutes: z.object({ v4: z.array(routeSchema), v6: z.array(routeSchema) }),
  }),
  steps: z.array(stepSchema),
});
export type TakeoverIntent = z.infer<typeof intentSchema>;

const PREFIX = 'takeover-';
const SUFFIX = '.intent.json';

export function intentFileName(bridge: string): string {
  return `${PREFIX}${assertIfName(bridge, 'bridge name')}${SUFFIX}`;
}

/** Atomic (util/atomic-file.ts): after a crash the record is there whole or not at all. */
export async function writeIntent(dir: string, intent: TakeoverIntent): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, intentFileName(intent.bridge));
  await writeFileAtomic(path, `${JSON.stringify(intent, null, 2)}\n`);
  return path;
}

export async function removeIntent(path: string): Promise<void> {
  await rm(path, { force: true });
}

const routeKey = (r: RouteInfo): string => `${r.dst} ${r.gateway ?? ''} ${r.metric ?? ''}`;
const addrKey = (a: AddrInfo): string => `${a.local}/${a.prefixlen}`;

export interface HostAfter {
  nicMaster: string | undefined;
  nicAddrs: readonly AddrInfo[];
  bridgeAddrs: readonly AddrInfo[];
  bridgeRoutes: { v4: readonly RouteInfo[]; v6: readonly RouteInfo[] };
}

/**
 * Whether the host shows every effect of the recorded takeover: the NIC in the bridge, every moved address on
 * the bridge and none left on the NIC, every moved route on the bridge. Only then may the batch count as done.
 */
export function takeoverCompleted(intent: TakeoverIntent, now: HostAfter): boolean {
  if (now.nicMaster !== intent.bridge) return false;
  const moved = movableAddrs(intent.snapshot.nicAddrs).map(addrKey);
  const onBridge = new Set(now.bridgeAddrs.map(addrKey));
  const onNic = new Set(now.nicAddrs.map(addrKey));
  if (moved.some((a) => !onBridge.has(a) || onNic.has(a))) return false;
  const routes = [
    ...movableRoutes(intent.snapshot.nicRoutes.v4, intent.snapshot.nicAddrs),
    ...movableRoutes(intent.snapshot.nicRoutes.v6, intent.snapshot.nicAddrs),
  ].map(routeKey);
  const bridgeRoutes = new Set([...now.bridgeRoutes.v4, ...now.bridgeRoutes.v6].map(routeKey));
  return routes.every((r) => bridgeRoutes.has(r));
}

/** Every undo command of the recorded steps, newest first: run with -force, the ones that never ran find nothing. */
export function intentRollback(intent: TakeoverIntent): string[][] {
  return rollbackCommands(intent.steps, intent.steps.length).map((c) => [...c]);
}

export type RecoveryOutcome = { bridge: string; outcome: 'finished' | 'rolled-back' };

async function readIntent(path: string): Promise<TakeoverIntent> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    throw new FlatnetError(
      'internal',
      `The takeover intent ${path} cannot be read (${errorMessage(err)}); check the NIC and remove it.`,
    );
  }
  const parsed = intentSchema.safeParse(data);
  if (!parsed.success)
    throw new FlatnetError('internal', `The takeover intent ${path} is damaged; check the NIC and remove it.`);
  return parsed.data;
}

/**
 * At start, before anything else touches the bridge: each intent left behind is finished (the host shows the
 * whole takeover) or rolled back to the snapshot, then removed. A rollback that fails keeps the record, so the
 * next start tries again; the error names it.
 */
export async function recoverTakeovers(ip: IpRunner, dir: string, logger?: Logger): Promise<RecoveryOutcome[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith(PREFIX) && n.endsWith(SUFFIX));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // Temp files of a record whose write was cut short: the batch never started.
  for (const n of await readdir(dir)) {
    if (n.startsWith(`.${PREFIX}`) && n.endsWith('.tmp')) await rm(join(dir, n), { force: true });
  }
  const out: RecoveryOutcome[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const intent = await readIntent(path);
    const links = await listLinks(ip);
    const nic = links.find((l) => l.ifname === intent.parent);
    const bridgeExists = links.some((l) => l.ifname === intent.bridge);
    if (nic !== undefined && bridgeExists) {
      const [nicAddrs, bridgeAddrs, bridgeRoutes] = await Promise.all([
        linkAddrs(ip, intent.parent),
        linkAddrs(ip, intent.bridge),
        linkRoutes(ip, intent.bridge),
      ]);
      if (takeoverCompleted(intent, { nicMaster: nic.master, nicAddrs, bridgeAddrs, bridgeRoutes })) {
        await removeIntent(path);
        logger?.warn(
          { bridge: intent.bridge, parent: intent.parent, pid: intent.pid },
          'a bridge takeover cut short had completed; kept',
        );
        out.push({ bridge: intent.bridge, outcome: 'finished' });
        continue;
      }
    }
    try {
      await ip.batch(intentRollback(intent), { force: true });
    } catch (err) {
      // -force runs every line; errors are the undo steps whose work never happened (e.g. File exists).
      logger?.debug({ bridge: intent.bridge, err: errorMessage(err) }, 'rollback lines that found nothing to undo');
    }
    const after = (await listLinks(ip)).find((l) => l.ifname === intent.parent);
    if (after?.master === intent.bridge) {
      throw new FlatnetError(
        'unavailable',
        `The takeover of ${intent.parent} by ${intent.bridge} cut short by a crash could not be rolled back (${path} kept); run flatnet bridge restore --force.`,
      );
    }
    await removeIntent(path);
    logger?.warn(
      { bridge: intent.bridge, parent: intent.parent, pid: intent.pid, steps: intent.steps.length },
      'a bridge takeover cut short was rolled back',
    );
    out.push({ bridge: intent.bridge, outcome: 'rolled-back' });
  }
  return out;
}
