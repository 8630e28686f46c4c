import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { BackgroundWork } from '../../src/util/background-work.js';

/** A promise and its resolver, to hold a round open for as long as a test wants. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('run() tracks its task until it settles, and a failure neither rejects nor escapes', async () => {
  const work = new BackgroundWork(silentLogger());
  const g = gate();
  let done = false;
  const tracked = work.run('task', async () => {
    await g.promise;
    done = true;
  });
  const failed = work.run('failing task', () => Promise.reject(new Error('boom')));
  const idle = work.idle();
  await Promise.resolve();
  assert.equal(done, false);
  g.open();
  await idle;
  assert.equal(done, true);
  assert.equal(await tracked, undefined);
  assert.equal(await failed, undefined);
});

test('every(): rounds never overlap, a failed round does not stop the next, stop() ends them and waits', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const work = new BackgroundWork(silentLogger());
  const gates: ReturnType<typeof gate>[] = [];
  let rounds = 0;
  void work.every('round', 1000, async () => {
    rounds++;
    const g = gate();
    gates.push(g);
    await g.promise;
    if (rounds === 1) throw new Error('etcd away');
  });
  assert.equal(rounds, 0, 'the first round comes after one period');
  t.mock.timers.tick(1000);
  assert.equal(rounds, 1);
  t.mock.timers.tick(1000);
  t.mock.timers.tick(1000);
  assert.equal(rounds, 1, 'ticks while a round runs are skipped');
  gates[0]?.open();
  await work.idle();
  t.mock.timers.tick(1000);
  assert.equal(rounds, 2, 'the round after a failure runs');
  const stopped = work.stop();
  assert.equal(work.signal.aborted, true);
  let stopDone = false;
  void stopped.then(() => (stopDone = true));
  await Promise.resolve();
  assert.equal(stopDone, false, 'stop() waits for the running round');
  gates[1]?.open();
  await stopped;
  t.mock.timers.tick(5000);
  assert.equal(rounds, 2, 'no round after stop()');
});

test('every() with immediately runs a first round at once; nothing starts after stop()', async () => {
  const work = new BackgroundWork(silentLogger());
  let rounds = 0;
  void work.every('round', 60_000, async () => void rounds++, { immediately: true });
  assert.equal(rounds, 1);
  await work.stop();
  void work.every('late', 1, async () => void rounds++, { immediately: true });
  assert.equal(rounds, 1);
});

test('a task that throws before returning a promise is logged like any failure; nothing runs after stop()', async () => {
  const work = new BackgroundWork(silentLogger());
  const throwing = (): Promise<unknown> => {
    throw new Error('thrown at once');
  };
  assert.equal(await work.run('throwing task', throwing), undefined);
  await work.every('throwing round', 60_000, throwing, { immediately: true });
  await work.stop();
  let ran = false;
  await work.run('late task', async () => void (ran = true));
  assert.equal(ran, false);
});
