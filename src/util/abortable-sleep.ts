import { setTimeout } from 'node:timers/promises';

/** Waits `ms`; false when `signal` was or got aborted first (shutdown ends a background wait at once). */
export async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  try {
    await setTimeout(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
