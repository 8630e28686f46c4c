import type { CoolingEntry, CoolingPolicy, ReleasedRecord } from '../model/cooling-record.js';
import type { AssignmentRead } from '../model/records.js';

/**
 * Whether the address a container name's index entry points at goes back to that name: 'give-back' when the
 * name released it and nobody reused it since (even after its sticky time, as long as it is still unclaimed),
 * 'holds' when a container of that name holds it now (the new one gets a fresh address), 'gone' otherwise.
 */
export type StickyVerdict = 'give-back' | 'holds' | 'gone';

export interface StickyRead {
  assigned: AssignmentRead | undefined;
  released: ReleasedRecord | undefined;
  /** The block's cooling entry for the address (undefined = it is not cooling). */
  entry: CoolingEntry | undefined;
}

export function stickyReuse(name: string, read: StickyRead, _now: number, policy: CoolingPolicy): StickyVerdict {
  if (policy.stickySec <= 0) return 'gone';
  if (read.assigned !== undefined) {
    return read.assigned !== 'unreadable' && read.assigned.assignment.endpointName === name ? 'holds' : 'gone';
  }
  if (!read.entry || !read.released || read.released.endpointName !== name) return 'gone';
  return 'give-back';
}
