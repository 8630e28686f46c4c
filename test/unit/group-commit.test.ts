import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from '../../src/util/group-commit.js';
import { fakeClock } from '../harness/fake-clock.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('requests that queue up behind an in-flight run are served together by the next one', async () => {
  const gates: (() => void)[] = [];
  const runs: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const batcher = new GroupCommit<number, number>(
    async (_key, inputs) => {
      runs.push(inputs);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const gate = deferred();
      gates.push(gate.resolve);
      await gate.promise;
      inFlight--;
      return inputs.map((i) => i * 10);
    },
    { maxBatch: 100, gatherMs: 0 },
  );
  const first = [batcher.submit('p', 1), batcher.submit('p', 2)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs, [[1, 2]], 'requests sent together share the first run');
  const later = [batcher.submit('p', 3), batcher.submit('p', 4), batcher.submit('p', 5)];
  await new Promise((r) => setImmediate(r));
  assert.equal(runs.length, 1, 'no second run while one is in flight');
  gates[0]?.();
  assert.deepEqual(await Promise.all(first), [10, 20]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs[1], [3, 4, 5], 'everything that queued meanwhile goes in one run');
  gates[1]?.();
  assert.deepEqual(await Promise.all(later), [30, 40, 50]);
  assert.equal(maxInFlight, 1);
  const other = batcher.submit('q', 6);
  await new Promise((r) => setImmediate(r));
  gates[2]?.();
  assert.equal(await other, 60, 'pools are batched apart');
});

test('a run that serves part of its batch leaves the rest first in line; a failed run rejects its batch only', async () => {
  let calls = 0;
  const batcher = new GroupCommit<string, string>(
    async (_key, inputs) => {
      calls++;
      if (inputs.includes('bad')) throw new Error('boom');
      return inputs.slice(0, 1).map((s) => s.toUpperCase());
    },
    { maxBatch: 100, gatherMs: 0 },
  );
  const served = await Promise.all([batcher.submit('k', 'a'), batcher.submit('k', 'b'), batcher.submit('k', 'c')]);
  assert.deepEqual(served, ['A', 'B', 'C']);
  assert.equal(calls, 3);
  await assert.rejects(batcher.submit('k', 'bad'), /boom/);
  assert.equal(await batcher.submit('k', 'd'), 'D');
});

test('a batch is capped at maxBatch', async () => {
  const sizes: number[] = [];
  const batcher = new GroupCommit<number, number>(
    async (_k, inputs) => {
      sizes.push(inputs.length);
      return inputs;
    },
    { maxBatch: 3, gatherMs: 0 },
  );
  await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => batcher.submit('k', i)));
  assert.ok(sizes.every((n) => n <= 3));
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    7,
  );
});

/** A batcher whose runs finish when the test says so, recording what each run was given. */
function gatedBatcher(gatherMs: number): {
  batcher: GroupCommit<number, number>;
  runs: number[][];
  finish: () => void;
} {
  const runs: number[][] = [];
  const gates: (() => void)[] = [];
  const batcher = new GroupCommit<number, number>(
    async (_key, inputs) => {
      runs.push(inputs);
      const gate = deferred();
      gates.push(gate.resolve);
      await gate.promise;
      return inputs;
    },
    { maxBatch: 100, gatherMs },
  );
  return { batcher, runs, finish: () => gates.shift()?.() };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('group commit: the next run waits for the callers the last one served and starts once they are back', async () => {
  // Far longer than the few event-loop turns below: the run must start because the callers came back.
  const { batcher, runs, finish } = gatedBatcher(1_000);
  const first = [1, 2, 3].map((i) => batcher.submit('p', i));
  await turn();
  assert.deepEqual(runs, [[1, 2, 3]]);
  finish();
  await Promise.all(first);
  const second = [batcher.submit('p', 4), batcher.submit('p', 5)];
  await turn();
  assert.equal(runs.length, 1, 'two of three callers back: still gathering');
  second.push(batcher.submit('p', 6));
  await turn();
  assert.deepEqual(runs[1], [4, 5, 6], 'the third one completes the batch, which starts at once');
  finish();
  assert.deepEqual(await Promise.all(second), [4, 5, 6]);
});

test('group commit: callers that do not come back delay the next run by gatherMs at most', async (t) => {
  const clock = fakeClock(t);
  const { batcher, runs, finish } = gatedBatcher(30);
  const first = [1, 2, 3].map((i) => batcher.submit('p', i));
  await turn();
  finish();
  await Promise.all(first);
  const lone = batcher.submit('p', 4);
  await turn();
  assert.equal(runs.length, 1, 'one of three back: gathering');
  await clock.advance(29);
  assert.equal(runs.length, 1, 'it did wait');
  await clock.advance(1);
  assert.deepEqual(runs[1], [4], 'after gatherMs the run goes with what it has');
  finish();
  assert.equal(await lone, 4);
});

test('group commit: a lone caller never waits', async () => {
  // After a run of one, nobody else is expected: with an hour of gather time this test would time out.
  const { batcher, runs, finish } = gatedBatcher(3_600_000);
  for (let i = 0; i < 3; i++) {
    const p = batcher.submit('p', i);
    await turn();
    assert.equal(runs.length, i + 1);
    finish();
    assert.equal(await p, i);
  }
});
