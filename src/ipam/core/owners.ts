import type { Assignment, AssignmentRead } from '../model/records.js';

/** Who holds an address, as the network driver and Docker's API tell it after the address was handed out. */
export interface OwnerPatch {
  endpointId: string;
  networkId?: string;
  containerId?: string;
  containerName?: string;
}

/**
 * The record with the owner filled in, or undefined to leave it: nothing held, another host's record, the address
 * now held by another endpoint (released and reused meanwhile), or nothing new. Safe to apply twice.
 */
export function withOwner(read: AssignmentRead | undefined, hostId: string, patch: OwnerPatch): Assignment | undefined {
  if (read === undefined || read === 'unreadable') return undefined;
  const a = read.assignment;
  if (a.hostId !== hostId) return undefined;
  if (a.endpointId !== undefined && a.endpointId !== patch.endpointId) return undefined;
  const next: Assignment = { ...a, endpointId: patch.endpointId };
  if (patch.networkId) next.networkId = patch.networkId;
  if (patch.containerId) next.containerId = patch.containerId;
  if (patch.containerName) next.containerName = patch.containerName.replace(/^\//, '');
  const changed = (Object.keys(next) as (keyof Assignment)[]).some((k) => next[k] !== a[k]);
  return changed ? next : undefined;
}
