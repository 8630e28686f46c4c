import type { Logger } from '../observability/logger.js';
import { listLinks } from '../hostnet/ip-json.js';
import { IpBatchError, type IpRunner } from '../hostnet/ip-runner.js';
import { isFlatnetVeth, vethNames } from '../hostnet/names.js';
import { onlyMissingLinkErrors } from '../hostnet/veth.js';

/** flatnet veth names (either end) in `links` that no endpoint in `endpointIds` accounts for. */
export function orphanVeths(links: readonly string[], endpointIds: readonly string[]): string[] {
  const owned = new Set(
    endpointIds.flatMap((id) => {
      const { host, container } = vethNames(id);
      return [host, container];
    }),
  );
  // Only names of the exact shape flatnet gives (Docker ids are hex), so a user's own veth is never touched.
  return links.filter((name) => isFlatnetVeth(name) && !owned.has(name));
}

/**
 * Deletes veths left by endpoints whose records are gone (Docker's teardown reached a dead plugin, or the
 * plugin crashed mid-Join). Returns the names removed.
 */
export async function removeOrphanVeths(
  ip: IpRunner,
  endpointIds: readonly string[],
  logger: Logger,
): Promise<string[]> {
  const veths = (await listLinks(ip, ['type', 'veth'])).map((l) => l.ifname);
  const orphans = orphanVeths(veths, endpointIds);
  if (orphans.length === 0) return [];
  try {
    await ip.batch(
      orphans.map((name) => ['link', 'del', 'dev', name]),
      { force: true },
    );
  } catch (err) {
    // Deleting one end takes its peer along, so the peer's own delete finds nothing.
    if (!(err instanceof IpBatchError && onlyMissingLinkErrors(err.stderr))) throw err;
  }
  logger.info({ removed: orphans }, 'removed veths of endpoints this host no longer knows');
  return orphans;
}
