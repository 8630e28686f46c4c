import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import type { BlockRepository, IpamStores, PoolRepository } from '../../src/ipam/ports.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { withBit } from '../../src/ipam/core/bitmap.js';
import { fsck, repairBits } from '../../src/ipam/services/fsck.js';
import { forgetHost, hostFootprint, operatorRelease } from '../../src/ipam/services/host-forget.js';
import { type HostView, planReconcile } from '../../src/ipam/services/reconcile-plan.js';
import { Reconciler } from '../../src/ipam/services/reconcile.js';
import { appendBounded, type JournalEntry, ReleaseJournal } from '../../src/ipam/services/release-journal.js';
import { parseSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryStores } from '../fakes/memory-stores.js';
import { poolWithRange } from '../fakes/pools.js';
import { kind, v4 } from '../harness/ipam-requests.js';

const container = (poolId: string, address = '') => ({ poolId, address, kind: 'container' as const });

/** A journal file in memory (the file itself is util/atomic-file.ts, exercised by the integration test). */
function memoryStorage(initial?: string) {
  const s = {
    text: initial,
    saves: 0,
    load: async () => s.text,
    save: async (t: string) => void ((s.text = t), s.saves++),
  };
  return s;
}

/** The stores with an etcd outage switch: while down, every pool and block call fails as EtcdIo's do. */
function outage(inner: MemoryStores): { stores: IpamStores; down: { on: boolean } } {
  const down = { on: false };
  const guard = <T extends object>(o: T): T =>
    new Proxy(o, {
      get(target, prop, recv) {
        const v = Reflect.get(target, prop, recv) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          // the block cache is memory: an outage only means no cached block is trusted
          if (down.on && prop === 'takeCached') return undefined;
          // etcd's limits are no round trip
          if (prop === 'capacity') return (v as (...a: unknown[]) => unknown).apply(target, args);
          if (down.on) return Promise.reject(new FlatnetError('unavailable', 'etcd did not answer (test outage)'));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return {
    down,
    stores: {
      pools: guard<PoolRepository>(inner.pools),
      blocks: guard<BlockRepository>(inner.blocks),
      addresses: inner.addresses,
      hostIndex: inner.hostIndex,
      retry: inner.retry,
    },
  };
}

const view = (o: Partial<HostView> = {}): HostView => ({
  held: new Set(),
  complete: new Set(),
  incomplete: new Map(),
  dockerComplete: false,
  ...o,
});

test('claims are counted per network: a repeated RequestPool succeeds, the pool goes with the last ReleasePool', async () => {
  const stores = new MemoryStores();
  const h1 = new IpamDriverService(stores, 'h1', silentLogger());
  const first = await h1.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
  // a stale claim (its ReleasePool lost) or a second network on the pool: neither blocks the create
  assert.equal((await h1.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'))).poolId, first.poolId);
  assert.equal((await stores.pools.read(parseSubnet('10.9.0.0/24')))?.config.claims.length, 2);
  await h1.releasePool(first.poolId);
  assert.equal(
    (await stores.pools.read(parseSubnet('10.9.0.0/24')))?.config.claims.length,
    1,
    'one network still holds it',
  );
  await h1.releasePool(first.poolId);
  assert.equal(
    await stores.pools.read(parseSubnet('10.9.0.0/24')),
    undefined,
    'the last release drops the Docker pool',
  );
  await h1.releasePool(first.poolId);
});

test('reconcile plan: held, young, in flight and incomplete views are kept; the rest is freed', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  const old = '2026-01-01T00:00:00Z';
  const a = (address: string, subnet = '10.0.0.0/24', since = old) => ({ address, subnet, poolId: subnet, since });
  const assigned = [
    a('10.0.0.5'),
    a('10.0.0.6'),
    a('10.0.0.7', '10.0.0.0/24', '2026-01-01T00:09:30Z'),
    a('10.0.0.8', '10.0.0.0/24', 'garbage'),
    a('10.1.0.5', '10.1.0.0/24'),
  ];
  const v = view({
    held: new Set(['10.0.0.5']),
    complete: new Set(['10.0.0.0/24']),
    incomplete: new Map([['10.1.0.0/24', 'Docker unreachable']]),
  });
  const plan = planReconcile(assigned, v, { now, graceMs: 120_000, inFlight: new Set() });
  assert.deepEqual(
    plan.free.map((x) => x.address),
    ['10.0.0.6'],
  );
  assert.deepEqual(
    plan.kept.map((k) => [k.address.address, k.reason]),
    [
      ['10.0.0.5', 'held'],
      ['10.0.0.7', 'young'],
      ['10.0.0.8', 'young'],
      ['10.1.0.5', 'incomplete-view'],
    ],
  );
  assert.deepEqual(plan.skipped, [{ subnet: '10.1.0.0/24', why: 'Docker unreachable' }]);
  assert.deepEqual(
    planReconcile(assigned, v, { now, graceMs: 120_000, inFlight: new Set(['10.0.0.0/24']) }).free,
    [],
    'allocation in flight',
  );
  assert.deepEqual(
    planReconcile(
      assigned,
      { ...v, unusable: 'endpoint record x is unreadable' },
      { now, graceMs: 0, inFlight: new Set() },
    ).free,
    [],
  );
  assert.deepEqual(
    planReconcile(assigned, view({ dockerComplete: true }), { now, graceMs: 0, inFlight: new Set() }).free.length,
    5 - 1,
    'Docker covers every subnet; the garbage time stays',
  );
});

test('reconciler frees only unheld addresses of this host, and never one re-assigned since it was read', async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger());
  const h2 = new IpamDriverService(stores, 'h2', silentLogger());
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  await h2.requestPool(v4('10.1.0.0/22'));
  const [kept, orphan, other] = [
    await h1.requestAddress(container(poolId)),
    await h1.requestAddress(container(poolId)),
    await h2.requestAddress(container(poolId)),
  ];
  const bare = (c: { address: string }) => c.address.split('/')[0] as string;
  const source = { view: async () => view({ held: new Set([bare(kept)]), complete: new Set(['10.1.0.0/22']) }) };
  const r = new Reconciler(stores, 'h1', source, { graceMs: 0 }, silentLogger());
  assert.deepEqual(
    (await r.run({ dryRun: true })).plan.free.map((x) => x.address),
    [bare(orphan)],
  );
  assert.equal((await stores.addresses.list(parseSubnet('10.1.0.0/22'))).length, 3, 'a dry run frees nothing');

  // between the plan and the commit the orphan is released and handed out again: the new holder keeps it
  const plan = await r.plan();
  await h1.releaseAddress(poolId, bare(orphan));
  await h1.requestAddress(container(poolId, bare(orphan)));
  stores.beforeNextCommit(async () => undefined);
  const replanned = new Reconciler(
    stores,
    'h1',
    { view: async () => view({ held: new Set([bare(kept)]), complete: new Set(['10.1.0.0/22']) }) },
    { graceMs: 60_000 },
    silentLogger(),
  );
  assert.deepEqual((await replanned.run()).freed, [], 'young again: kept');
  assert.equal(plan.free.length, 1);

  const result = await r.run();
  assert.deepEqual(result.freed, [bare(orphan)]);
  const left = (await stores.addresses.list(parseSubnet('10.1.0.0/22'))).map((x) => x.address).sort();
  assert.deepEqual(left, [bare(kept), bare(other)].sort(), "h2's address is not h1's to judge");
});

test('journal: bounded, ordered, kept while etcd is away, each entry applied once', async () => {
  const e = (n: number): JournalEntry => ({ op: 'pool', poolId: `10.${n}.0.0/24`, at: '2026-01-01T00:00:00Z' });
  assert.deepEqual(appendBounded([e(1), e(2)], e(3), 2), { entries: [e(2), e(3)], dropped: [e(1)] });
  const storage = memoryStorage();
  const j = new ReleaseJournal(storage, silentLogger(), 3);
  for (const n of [1, 2, 3, 4]) await j.add(e(n));
  assert.deepEqual(
    (await j.pending()).map((x) => x.poolId),
    ['10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24'],
  );
  const applied: string[] = [];
  let etcdUp = false;
  const apply = async (x: JournalEntry) => {
    if (!etcdUp) throw new FlatnetError('unavailable', 'down');
    if (x.poolId === '10.3.0.0/24') throw new FlatnetError('invalid', 'bad pool');
    applied.push(x.poolId);
  };
  assert.deepEqual(await j.drain(apply), { landed: 0, discarded: 0, left: 3 });
  etcdUp = true;
  assert.deepEqual(await j.drain(apply), { landed: 2, discarded: 1, left: 0 });
  assert.deepEqual(applied, ['10.2.0.0/24', '10.4.0.0/24']);
  // a restarted server reads what is left from the file; a damaged file starts a new journal
  await j.add(e(7));
  assert.deepEqual(
    (await new ReleaseJournal(memoryStorage(storage.text), silentLogger()).pending()).map((x) => x.poolId),
    ['10.7.0.0/24'],
  );
  assert.deepEqual(await new ReleaseJournal(memoryStorage('{not json'), silentLogger()).pending(), []);
});

test('journal: an entry whose release landed is removed alone; a drain leaves entries it is told are landing', async () => {
  const a = (n: number): JournalEntry => ({
    op: 'address',
    poolId: '10.9.0.0/24',
    address: `10.9.0.${n}`,
    at: '2026-01-01T00:00:00Z',
  });
  const j = new ReleaseJournal(memoryStorage(), silentLogger());
  for (const n of [1, 2, 3]) await j.add(a(n));
  await j.remove(a(2));
  await j.remove({ ...a(3), at: '2026-01-02T00:00:00Z' });
  assert.deepEqual(
    (await j.pending()).map((x) => x.op === 'address' && x.address),
    ['10.9.0.1', '10.9.0.3'],
    'only the equal entry goes',
  );
  const applied: string[] = [];
  const result = await j.drain(
    async (x) => void applied.push(x.op === 'address' ? x.address : ''),
    (x) => x.op === 'address' && x.address === '10.9.0.1',
  );
  assert.deepEqual(applied, ['10.9.0.3']);
  assert.deepEqual(result, { landed: 1, discarded: 0, left: 1 });
  assert.deepEqual(
    (await j.pending()).map((x) => x.op === 'address' && x.address),
    ['10.9.0.1'],
  );
});

test('a release during an etcd outage answers at once, is journaled, and lands when etcd is back', async () => {
  const { stores: inner } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const { stores, down } = outage(inner);
  const journal = new ReleaseJournal(memoryStorage(), silentLogger());
  const h1 = new IpamDriverService(stores, 'h1', silentLogger(), { journal });
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  const gw = await h1.requestAddress({ poolId, address: '', kind: 'gateway' });
  const a = (await h1.requestAddress(container(poolId))).address.split('/')[0] as string;
  const b = (await h1.requestAddress(container(poolId))).address.split('/')[0] as string;
  down.on = true;
  await h1.releaseAddress(poolId, a);
  await h1.releaseAddress(poolId, gw.address.split('/')[0] as string);
  await h1.releasePool(poolId);
  await assert.rejects(
    h1.requestAddress(container(poolId)),
    kind('unavailable'),
    'allocations still fail: only releases are journaled',
  );
  assert.deepEqual(
    (await journal.pending()).map((x) => x.op),
    ['address', 'address', 'pool'],
  );
  assert.equal(await h1.drainJournal()?.then((r) => r.left), 3, 'still away: kept');
  down.on = false;
  // b was never released: replaying the others leaves it assigned
  assert.deepEqual(await h1.drainJournal(), { landed: 3, discarded: 0, left: 0 });
  const cfg = (await inner.pools.read(parseSubnet('10.1.0.0/22')))?.config;
  assert.deepEqual([cfg?.claims.length, cfg?.reservations.length], [0, 0]);
  assert.deepEqual(
    (await inner.addresses.list(parseSubnet('10.1.0.0/22'))).map((x) => x.address),
    [b],
  );
});

test('a replayed entry never frees an address assigned after the release was asked for', async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger(), {
    journal: new ReleaseJournal(memoryStorage(), silentLogger()),
  });
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  const a = (await h1.requestAddress(container(poolId))).address.split('/')[0] as string;
  const at = new Date(Date.now() - 60_000).toISOString();
  await h1.replay({ op: 'address', poolId, address: a, at });
  assert.equal((await stores.addresses.list(parseSubnet('10.1.0.0/22'))).length, 1, 'assigned after the entry: kept');
  await h1.replay({ op: 'address', poolId, address: a, at: new Date(Date.now() + 1000).toISOString() });
  assert.equal((await stores.addresses.list(parseSubnet('10.1.0.0/22'))).length, 0);
  await h1.replay({ op: 'address', poolId, address: a, at: new Date().toISOString() });
});

test("host forget drops a host's claims, reservations and addresses, and leaves the others", async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger());
  const h2 = new IpamDriverService(stores, 'h2', silentLogger());
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  await h1.requestPool(v4('10.1.0.0/22'));
  await h2.requestPool(v4('10.1.0.0/22'));
  await h1.requestAddress({ poolId, address: '', kind: 'gateway' });
  await h2.requestAddress({ poolId, address: '', kind: 'gateway' });
  await h1.requestAddress(container(poolId));
  const kept = await h2.requestAddress(container(poolId));
  const held = await hostFootprint(stores, 'h1');
  assert.deepEqual(
    [held.claims, held.reservations.map((r) => r.count), held.addresses.length],
    [[{ subnet: '10.1.0.0/22', count: 2 }], [1], 1],
  );
  await forgetHost(stores, 'h1');
  assert.deepEqual(await hostFootprint(stores, 'h1'), { hostId: 'h1', claims: [], reservations: [], addresses: [] });
  const h2held = await hostFootprint(stores, 'h2');
  assert.deepEqual(
    [h2held.claims.length, h2held.reservations.length, h2held.addresses.map((x) => x.address)],
    [1, 1, [kept.address.split('/')[0]]],
  );
  assert.equal((await operatorRelease(stores, '10.1.0.200')).outcome, 'not-assigned');
  assert.equal((await operatorRelease(stores, kept.address.split('/')[0] as string)).outcome, 'freed');
});

test('fsck finds bits without records and records without bits, and repair makes them agree', async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger());
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  await h1.requestAddress(container(poolId));
  const subnet = parseSubnet('10.1.0.0/22');
  // damage as a hand edit would: a bit with no record (10.1.0.9), a record with no bit (10.1.0.10)
  const view = await stores.blocks.read(subnet, 0n, ['10.1.0.10']);
  assert.ok(view);
  const bits = withBit(view.bits, 9, true);
  const noNodes = view.nodes.map(() => undefined);
  const assignment = { hostId: 'h1', since: new Date().toISOString(), poolId };
  assert.ok(await stores.blocks.commit(view, { bits, nodes: noNodes, create: [{ address: '10.1.0.10', assignment }] }));
  const findings = await fsck(stores, new Set(['h1']));
  assert.deepEqual(findings.map((f) => [f.kind, f.what]).sort(), [
    ['bit-without-record', '10.1.0.9'],
    ['record-without-bit', '10.1.0.10'],
  ]);
  assert.equal(await repairBits(stores, findings), 1);
  assert.deepEqual(await fsck(stores, new Set(['h1'])), []);
  assert.deepEqual(await fsck(stores, new Set()), [
    { subnet: '10.1.0.0/22', kind: 'claim-of-unknown-host', what: 'h1' },
  ]);
});

test('a replayed release cools like any release: the address goes to no other container, its record is kept', async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.2');
  const cooling = { policy: { cooldownSec: 300, stickySec: 0 }, now: () => Math.floor(Date.now() / 1000) };
  const h1 = new IpamDriverService(stores, 'h1', silentLogger(), {
    journal: new ReleaseJournal(memoryStorage(), silentLogger()),
    cooling,
  });
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  const a = (await h1.requestAddress(container(poolId))).address.split('/')[0] as string;
  await h1.replay({ op: 'address', poolId, address: a, at: new Date(Date.now() + 1000).toISOString() });
  const subnet = parseSubnet('10.1.0.0/22');
  assert.deepEqual(
    (await stores.addresses.listReleased(subnet)).map((r) => r.address),
    [a],
    'the freed address cools',
  );
  const next = (await h1.requestAddress(container(poolId))).address.split('/')[0];
  assert.notEqual(next, a, 'another container gets the other address of the range, not the cooling one');
});

test('a replayed ReleasePool never drops the claim of a network created after the release was asked for', async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger(), {
    journal: new ReleaseJournal(memoryStorage(), silentLogger()),
  });
  const before = new Date(Date.now() - 60_000).toISOString();
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  const claims = async () => (await stores.pools.read(parseSubnet('10.1.0.0/22')))?.config.claims.length ?? 0;
  await h1.replay({ op: 'pool', poolId, at: before });
  assert.equal(await claims(), 1, 'the claim is newer than the release: kept');
  await h1.replay({ op: 'pool', poolId, at: new Date(Date.now() + 1000).toISOString() });
  assert.equal(await claims(), 0);
});

test("a replay never drops a gateway reference (not safe to repeat): it stays reserved until the host's last claim goes", async () => {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.20');
  const h1 = new IpamDriverService(stores, 'h1', silentLogger(), {
    journal: new ReleaseJournal(memoryStorage(), silentLogger()),
  });
  // two networks of this host on the pool, one gateway: two references
  const { poolId } = await h1.requestPool(v4('10.1.0.0/22'));
  await h1.requestPool(v4('10.1.0.0/22'));
  const gw = (await h1.requestAddress({ poolId, address: '10.1.0.5', kind: 'gateway' })).address.split(
    '/',
  )[0] as string;
  await h1.requestAddress({ poolId, address: gw, kind: 'gateway' });
  const config = async () => (await stores.pools.read(parseSubnet('10.1.0.0/22')))?.config;
  const refs = async () => (await config())?.reservations.find((r) => r.address === gw)?.holders.h1 ?? 0;
  // one network went during an outage; its entries replayed (twice: the first landing's answer was lost)
  const at = new Date(Date.now() + 1000).toISOString();
  for (let i = 0; i < 2; i++) await h1.replay({ op: 'address', poolId, address: gw, at });
  await h1.replay({ op: 'pool', poolId, at });
  assert.equal((await config())?.claims.length, 1, 'one network left');
  assert.equal(
    await refs(),
    2,
    'the gateway is still reserved for the network left (one reference too many, never one too few)',
  );
  await assert.rejects(h1.requestAddress(container(poolId, gw)), 'the gateway is not handed to a container');
  await h1.releasePool(poolId);
  assert.equal(await refs(), 0, 'the last claim took the references with it');
});

test('a journaled ReleasePool names the claim it chose: replayed after its write applied unanswered, it drops no second claim', async () => {
  for (const applied of [true, false]) {
    const inner = new MemoryStores();
    let lose = false;
    // etcd got the release (and committed it, or not) but its answer was lost
    const pools: PoolRepository = {
      listSubnets: () => inner.pools.listSubnets(),
      read: (s) => inner.pools.read(s),
      readAll: () => inner.pools.readAll(),
      claimsOf: (h) => inner.pools.claimsOf(h),
      isHeld: (s, a) => inner.pools.isHeld(s, a),
      update: async (what, s, decide, prefetch) => {
        if (!lose) return inner.pools.update(what, s, decide, prefetch);
        lose = false;
        if (applied) await inner.pools.update(what, s, decide, prefetch);
        else
          await decide({
            current: (await inner.pools.read(s))?.config,
            index: [s],
            assignment: async () => undefined,
            blocks: async () => new Map(),
          });
        throw new FlatnetError('unavailable', 'etcd did not answer (txn) within 5.0 s (test)');
      },
    };
    const journal = new ReleaseJournal(memoryStorage(), silentLogger());
    const h1 = new IpamDriverService(
      { pools, blocks: inner.blocks, addresses: inner.addresses, hostIndex: inner.hostIndex, retry: inner.retry },
      'h1',
      silentLogger(),
      { journal },
    );
    // two networks of this host on one pool
    const { poolId } = await h1.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
    await new Promise((res) => setTimeout(res, 2));
    await h1.requestPool(v4('10.9.0.0/24', '10.9.0.0/28'));
    const claims = async () => (await inner.pools.read(parseSubnet('10.9.0.0/24')))?.config.claims.length ?? 0;
    lose = true;
    await h1.releasePool(poolId);
    assert.equal(await claims(), applied ? 1 : 2);
    const [entry] = await journal.pending();
    assert.ok(
      entry?.op === 'pool' && entry.claimSince !== undefined,
      'journaled with the claim it chose (Docker was told it worked)',
    );
    for (let i = 0; i < 2; i++) await h1.replay(entry);
    assert.equal(
      await claims(),
      1,
      applied
        ? 'it had applied: the replays drop nothing more'
        : 'it had not: the first replay drops that claim, the second nothing',
    );
  }
});
