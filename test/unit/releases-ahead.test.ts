import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { type JournalEntry, ReleaseJournal } from '../../src/ipam/services/release-journal.js';
import { ReleasesAhead } from '../../src/ipam/services/releases-ahead.js';
import { silentLogger } from '../../src/observability/logger.js';

const POOL = '10.9.0.0/24';
const ref = parsePoolId(POOL);
const at = '2026-01-01T00:00:00.000Z';
const entry = (address: string): JournalEntry & { op: 'address' } => ({ op: 'address', poolId: POOL, address, at });
const offsetOf = (address: string) => BigInt(Number(address.split('.')[3]));
const away = () => new FlatnetError('unavailable', 'etcd away');

function memoryStorage() {
  const s = {
    text: undefined as string | undefined,
    load: async () => s.text,
    save: async (t: string) => void (s.text = t),
  };
  return s;
}

/** A promise the test settles: stands for an etcd write that has not answered yet. */
function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets every callback already queued run (the journal's file writes are microtasks over a memory store). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A fake etcd write per call, recorded in order, each settled by the test. */
function fakeCommits() {
  const calls: { offset: bigint; done: ReturnType<typeof deferred> }[] = [];
  const commit = (_ref: unknown, _poolId: string, offset: bigint) => {
    const done = deferred();
    calls.push({ offset, done });
    return done.promise;
  };
  return { calls, commit };
}

test('answer first: the release answers once journaled; the entry goes when its write lands', async () => {
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  const { calls, commit } = fakeCommits();
  const ahead = new ReleasesAhead(commit, silentLogger(), { journal, answerFirst: true });
  await ahead.release(entry('10.9.0.5'), ref, 5n);
  await flush();
  assert.equal(calls.length, 1, 'the write started after the answer');
  assert.deepEqual(ahead.pools(), [POOL], 'landing: the pool is busy');
  assert.deepEqual(await journal.pending(), [entry('10.9.0.5')]);

  let waited = false;
  const waiting = ahead.landed(POOL, '10.9.0.5').then(() => (waited = true));
  await flush();
  assert.equal(waited, false, 'a request for that address waits for the landing');
  calls[0]?.done.resolve();
  await waiting;
  await ahead.settle();
  await flush();
  assert.deepEqual(ahead.pools(), []);
  assert.deepEqual(await journal.pending(), [], 'landed: its entry is gone');
});

test('answer first: a write that fails keeps the entry, and the drain leaves a landing entry alone', async () => {
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  const { calls, commit } = fakeCommits();
  const ahead = new ReleasesAhead(commit, silentLogger(), { journal, answerFirst: true });
  await ahead.release(entry('10.9.0.7'), ref, 7n);
  await flush();

  const applied: JournalEntry[] = [];
  const drained = await ahead.drain(async (e) => void applied.push(e));
  assert.equal(applied.length, 0, 'landing right now: not replayed');
  assert.equal(drained?.left, 1);

  calls[0]?.done.reject(away());
  await ahead.settle();
  assert.deepEqual(await journal.pending(), [entry('10.9.0.7')], 'kept for the replay');
  await ahead.drain(async (e) => void applied.push(e));
  assert.deepEqual(applied, [entry('10.9.0.7')]);
  assert.deepEqual(await journal.pending(), []);
});

test('two releases of one address land one after the other, in order', async () => {
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  const { calls, commit } = fakeCommits();
  const ahead = new ReleasesAhead(commit, silentLogger(), { journal, answerFirst: true });
  await ahead.release(entry('10.9.0.9'), ref, 9n);
  await ahead.release({ ...entry('10.9.0.9'), at: '2026-01-01T00:00:01.000Z' }, ref, 9n);
  await flush();
  assert.equal(calls.length, 1, 'the second write waits for the first');
  calls[0]?.done.resolve();
  await flush();
  assert.equal(calls.length, 2);
  calls[1]?.done.resolve();
  await ahead.settle();
  assert.deepEqual(ahead.pools(), []);
});

test('landed(): an address written another way, or outside the pool, is found or ignored', async () => {
  const v6 = 'fd00:9::/64';
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  const { calls, commit } = fakeCommits();
  const ahead = new ReleasesAhead(commit, silentLogger(), { journal, answerFirst: true });
  await ahead.release({ op: 'address', poolId: v6, address: 'fd00:9::a', at }, parsePoolId(v6), 10n);
  await flush();
  let waited = false;
  const waiting = ahead.landed(v6, 'fd00:9:0:0::a').then(() => (waited = true));
  await ahead.landed(v6, '10.9.0.1');
  await ahead.landed(v6, 'not an address');
  await flush();
  assert.equal(waited, false, 'the same address in another spelling waits');
  calls[0]?.done.resolve();
  await waiting;
  await ahead.settle();
});

test('without answerFirst: the write comes first; etcd away journals it, any other failure throws', async () => {
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  let fail: FlatnetError | undefined;
  const writes: bigint[] = [];
  const ahead = new ReleasesAhead(
    async (_r, _p, offset) => {
      if (fail !== undefined) throw fail;
      writes.push(offset);
    },
    silentLogger(),
    { journal },
  );
  await ahead.release(entry('10.9.0.3'), ref, offsetOf('10.9.0.3'));
  assert.deepEqual(writes, [3n]);
  assert.deepEqual(await journal.pending(), [], 'nothing journaled');

  fail = away();
  await ahead.release(entry('10.9.0.4'), ref, 4n);
  assert.deepEqual(await journal.pending(), [entry('10.9.0.4')], 'journaled for the replay');

  fail = new FlatnetError('invalid', 'refused');
  await assert.rejects(ahead.release(entry('10.9.0.6'), ref, 6n), /refused/);
  assert.equal((await journal.pending()).length, 1);
});

test('without a journal: an etcd outage reaches the caller, and answerFirst has no effect', async () => {
  const ahead = new ReleasesAhead(
    async () => {
      throw away();
    },
    silentLogger(),
    { answerFirst: true },
  );
  await assert.rejects(ahead.release(entry('10.9.0.5'), ref, 5n), /etcd away/);
  assert.deepEqual(ahead.pools(), []);
  assert.equal(
    ahead.drain(async () => undefined),
    undefined,
  );
});

test('a journal that cannot be written: the release lands before its answer', async () => {
  const journal = new ReleaseJournal(
    {
      load: async () => undefined,
      save: async () => {
        throw new Error('disk full');
      },
    },
    silentLogger(),
  );
  const writes: bigint[] = [];
  const ahead = new ReleasesAhead(async (_r, _p, o) => void writes.push(o), silentLogger(), {
    journal,
    answerFirst: true,
  });
  await ahead.release(entry('10.9.0.8'), ref, 8n);
  assert.deepEqual(writes, [8n], 'written before the answer');
  await ahead.settle();
});
