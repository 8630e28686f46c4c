import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestBatcher } from '../../src/ipam/request-batcher.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test('requests that queue up behind in-flight runs are served together, at most two lanes at once', async () => {
  const gates: (() => void)[] = [];
  const runs: { inputs: number[]; lane: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const batcher = new RequestBatcher<number, number>(async (_key, inputs, lane) => {
    runs.push({ inputs, lane });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const gate = deferred();
    gates.push(gate.resolve);
    await gate.promise;
    inFlight--;
    return inputs.map((i) => i * 10);
  }, 100);
  const first = [batcher.submit('p', 1), batcher.submit('p', 2)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs, [{ inputs: [1, 2], lane: 0 }]);
  const second = [batcher.submit('p', 3)];
  await new Promise((r) => setImmediate(r));
  const third = [batcher.submit('p', 4), batcher.submit('p', 5)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs[1], { inputs: [3], lane: 1 });
  assert.equal(runs.length, 2, 'no third run while both lanes are busy');
  gates[0]?.();
  assert.deepEqual(await Promise.all(first), [10, 20]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(runs[2], { inputs: [4, 5], lane: 0 });
  gates[1]?.();
  gates[2]?.();
  assert.deepEqual(await Promise.all([...second, ...third]), [30, 40, 50]);
  assert.equal(maxInFlight, 2);
});

test('a run that serves part of its batch leaves the rest first in line; a failed run rejects its batch only', async () => {
  let calls = 0;
  const batcher = new RequestBatcher<string, string>(async (_key, inputs) => {
    calls++;
    if (inputs.includes('bad')) throw new Error('boom');
    return inputs.slice(0, 1).map((s) => s.toUpperCase());
  }, 100, 1);
  const served = await Promise.all([batcher.submit('k', 'a'), batcher.submit('k', 'b'), batcher.submit('k', 'c')]);
  assert.deepEqual(served, ['A', 'B', 'C']);
  assert.equal(calls, 3);
  await assert.rejects(batcher.submit('k', 'bad'), /boom/);
  assert.equal(await batcher.submit('k', 'd'), 'D');
});

test('a batch is capped at maxBatch', async () => {
  const sizes: number[] = [];
  const batcher = new RequestBatcher<number, number>(async (_k, inputs) => {
    sizes.push(inputs.length);
    return inputs;
  }, 3, 1);
  await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => batcher.submit('k', i)));
  assert.ok(sizes.every((n) => n <= 3));
  assert.equal(sizes.reduce((a, b) => a + b, 0), 7);
});
