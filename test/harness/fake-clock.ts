import type { TestContext } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';

/** A test's own clock: setTimeout and setInterval move only when the test advances them. */
export interface FakeClock {
  /** Moves the clock on by `ms`, firing the timers due, then lets the work they started run to its next wait. */
  advance(ms: number): Promise<void>;
}

/**
 * Replaces setTimeout/setInterval for the rest of the test (node:test's mock timers; undone when the test ends),
 * so that a test of delays costs no real time. Work a timer starts runs on promises and setImmediate, which stay
 * real: advance() lets a few turns of them pass.
 */
export function fakeClock(t: TestContext): FakeClock {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
  return {
    async advance(ms) {
      t.mock.timers.tick(ms);
      for (let i = 0; i < 5; i++) await turn();
    },
  };
}
