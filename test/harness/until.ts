import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it returns a value (undefined = not yet), failing with "timed out waiting for <what>": for
 * state another process or a real etcd reaches on its own schedule.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
