import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import type { Assignment, AssignmentRead } from '../../src/ipam/model/records.js';
import type { BlockRepository, IpamStores } from '../../src/ipam/ports.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { fsck, repairIndex } from '../../src/ipam/services/fsck.js';
import { forgetHost, hostFootprint } from '../../src/ipam/services/host-forget.js';
import { PoolService } from '../../src/ipam/services/pool-service.js';
import { Reconciler } from '../../src/ipam/services/reconcile.js';
import { AddressService } from '../../src/ipam/services/address-service.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdIo } from '../../src/store/etcd-io.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { v4 } from '../harness/ipam-requests.js';

/**
 * The per-host index and the txn budget against a real etcd: the index stays exactly the records through every
 * writer, a host with 100 addresses of one block is reconciled and forgotten in full (one txn would be over
 * etcd's 128 operations), and a cluster on the layout without the index is filled in while it keeps working.
 */
const skip = missing('etcd');
/** The pool's ID as RequestPool answers it (the same for every test's prefix). */
let poolId = '';
const ref = () => parsePoolId(poolId);
const fresh = (): string => `/hidx-${randomBytes(4).toString('hex')}`;
const log = silentLogger();
/** A host on which nothing holds any address (its containers are gone). */
const emptyHost = {
  view: async () => ({
    held: new Set<string>(),
    complete: new Set<string>(),
    incomplete: new Map(),
    dockerComplete: true,
  }),
};

const lab = etcdFixture(skip);

async function withPool(prefix: string): Promise<EtcdStores> {
  const stores = new EtcdStores(lab.etcd, prefix, log, { pageSize: 7 });
  poolId = (await new PoolService(stores.ipam.pools, 'setup', log).requestPool(v4('10.45.0.0/24', '10.45.0.0/24')))
    .poolId;
  return stores;
}

async function allocate(ipam: IpamStores, hostId: string, n: number): Promise<string[]> {
  const alloc = new AllocationService(ipam.blocks, ipam.retry, hostId);
  const out: string[] = [];
  while (out.length < n)
    out.push(
      ...(await alloc.allocate(
        ref(),
        poolId,
        Array.from({ length: n - out.length }, () => ({})),
      )),
    );
  return out;
}

async function fillIndex(ipam: IpamStores): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const step = await ipam.hostIndex.fillStep();
    if (step === 'complete') return;
    assert.notEqual(step, 'waiting');
  }
  assert.fail('the backfill did not finish');
}

/** Every addr record as "host|subnet|ip since poolId", and every index entry the same way: they must be equal. */
async function recordsAndIndex(prefix: string): Promise<{ records: string[]; index: string[] }> {
  const root = `${prefix}/ipam/v1`;
  const records = Object.entries(await lab.etcd.getAll().prefix(`${root}/pool/`).strings())
    .filter(([k]) => k.includes('/addr/'))
    .map(([k, v]) => {
      const [, s, , ip] = k.slice(`${root}/`.length).split('/');
      const a = JSON.parse(v) as { hostId: string; since: string; poolId: string };
      return `${a.hostId}|${s}|${ip} ${a.since} ${a.poolId}`;
    })
    .sort();
  const index = Object.entries(await lab.etcd.getAll().prefix(`${root}/host/`).strings())
    .map(([k, v]) => {
      const [, host, , s, ip] = k.slice(`${root}/`.length).split('/');
      const e = JSON.parse(v) as { since: string; poolId: string };
      return `${decodeURIComponent(host as string)}|${s}|${ip} ${e.since} ${e.poolId}`;
    })
    .sort();
  return { records, index };
}

async function assertIndexExact(prefix: string, what: string): Promise<number> {
  const { records, index } = await recordsAndIndex(prefix);
  assert.deepEqual(index, records, `index == records ${what}`);
  return records.length;
}

test(
  'a host holding 100 addresses of one block is reconciled in full; the index follows every writer',
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = await withPool(prefix);
    await fillIndex(ipam);
    const dead = await allocate(ipam, 'dead', 100);
    const live = await allocate(ipam, 'live', 5);
    assert.equal(await assertIndexExact(prefix, 'after allocations'), 105);
    assert.equal(new Set(dead.map((a) => a.split('.')[2])).size, 1, 'one block');

    // a release batch and an admin release
    await new AddressService(ipam, 'live', log).releaseContainers(ref(), poolId, [
      BigInt(live[0]?.split('.')[3] as string),
      BigInt(live[1]?.split('.')[3] as string),
    ]);
    await new IpamAdminService(ipam, log).releaseAddress(live[2] as string);
    await assertIndexExact(prefix, 'after releases');

    // an owner update leaves the entry; a record handed to another holder moves it
    const ownerOf = live[3] as string;
    const patch = (f: (a: Assignment) => Assignment) => (read: AssignmentRead | undefined) =>
      read === undefined || read === 'unreadable' ? undefined : f(read.assignment);
    assert.equal(
      await ipam.addresses.updateHeld(
        ref().subnet,
        ownerOf,
        patch((a) => ({ ...a, endpointId: 'e1' })),
      ),
      'written',
    );
    await assertIndexExact(prefix, 'after an owner update');
    assert.equal(
      await ipam.addresses.updateHeld(
        ref().subnet,
        ownerOf,
        patch((a) => ({ ...a, hostId: 'live2' })),
      ),
      'written',
    );
    await assertIndexExact(prefix, 'after a record changed holder');

    // a conflict record takes an address, and goes again
    await new ConflictService(ipam).record(ref(), poolId, '10.45.0.250', { seenAt: 'now', seenBy: 'live' });
    assert.equal(await assertIndexExact(prefix, 'after a conflict record'), 103);
    await new ConflictService(ipam).clear('10.45.0.250');

    const result = await new Reconciler(ipam, 'dead', emptyHost, { graceMs: 0 }, log).run();
    assert.equal(result.freed.length, 100, 'every address of the host freed');
    assert.equal(await assertIndexExact(prefix, 'after the reconcile'), 2);
    assert.deepEqual(await fsck(ipam), [], 'blocks agree with the records');
  },
);

test('host forget --force of a host holding 100 addresses of one block drops them all', { skip }, async () => {
  const prefix = fresh();
  const { ipam } = await withPool(prefix);
  await fillIndex(ipam);
  await allocate(ipam, 'gone', 100);
  assert.equal((await hostFootprint(ipam, 'gone')).addresses.length, 100);
  const held = await forgetHost(ipam, 'gone');
  assert.equal(held.addresses.length, 100);
  assert.equal(await assertIndexExact(prefix, 'after forget'), 0);
  assert.equal((await hostFootprint(ipam, 'gone')).addresses.length, 0);
  assert.deepEqual(await fsck(ipam), []);
});

test(
  'a split release whose reply is lost halfway is finished by the next run, block and index consistent',
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = await withPool(prefix);
    await fillIndex(ipam);
    await allocate(ipam, 'dead', 100);
    // The first commit applies and its caller hears "etcd did not answer" (the lost reply of a split write).
    let commits = 0;
    const blocks = new Proxy(ipam.blocks, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop !== 'commit') return typeof v === 'function' ? (v as () => unknown).bind(target) : v;
        return async (...args: Parameters<BlockRepository['commit']>) => {
          const out = await target.commit(...args);
          if (++commits === 1) throw new FlatnetError('unavailable', 'etcd did not answer (test: reply lost)');
          return out;
        };
      },
    });
    const lossy: IpamStores = { ...ipam, blocks };
    await assert.rejects(new Reconciler(lossy, 'dead', emptyHost, { graceMs: 0 }, log).run(), /did not answer/);
    const left = (await hostFootprint(ipam, 'dead')).addresses.length;
    assert.ok(left > 0 && left < 100, `part freed (${left} left)`);
    await assertIndexExact(prefix, 'after the lost reply');
    assert.deepEqual(await fsck(ipam), [], 'the applied part left a consistent block');
    const again = await new Reconciler(ipam, 'dead', emptyHost, { graceMs: 0 }, log).run();
    assert.equal(again.freed.length, left);
    assert.equal(await assertIndexExact(prefix, 'after the repeat'), 0);
  },
);

test(
  'etcd limits: a read of 300 keys is split and pinned; a write over 128 operations is refused before sending',
  { skip },
  async () => {
    const prefix = fresh();
    const io = new EtcdIo(lab.etcd, log, { prefix });
    const keys = Array.from({ length: 300 }, (_, i) => `${prefix}/k/${String(i).padStart(3, '0')}`);
    for (let i = 0; i < keys.length; i += 100)
      assert.ok(await io.write({ expect: [], puts: keys.slice(i, i + 100).map((key) => ({ key, value: 'v' })) }));
    const snap = await io.read(keys);
    assert.equal(snap.kvs.size, 300);
    await assert.rejects(
      io.write({ expect: [], puts: keys.slice(0, 128).map((key) => ({ key, value: 'w' })) }),
      (err: unknown) => err instanceof FlatnetError && err.kind === 'internal' && /txn limits/.test(err.message),
    );
    assert.equal((await lab.etcd.get(keys[0] as string).string()) ?? '', 'v', 'nothing sent');
  },
);

test(
  'upgrade in place: records without index entries are reconciled by a pool scan, then backfilled',
  { skip },
  async () => {
    const prefix = fresh();
    const stores = await withPool(prefix);
    const { ipam } = stores;
    const root = `${prefix}/ipam/v1`;
    // Today's layout: records without index entries, no layout marker.
    await allocate(ipam, 'h1', 20);
    await allocate(ipam, 'h2', 12);
    await lab.etcd.delete().prefix(`${root}/host/`);
    assert.equal(await ipam.hostIndex.complete(), false);
    assert.equal((await hostFootprint(ipam, 'h1')).addresses.length, 20, 'found by the pool scan');

    // An older version alive: no pass starts (its writes would carry no index entries).
    const oldHost = `${prefix}/hosts/old`;
    await lab.etcd.put(oldHost).value(JSON.stringify({ hostId: 'old', hostname: 'o', version: '0.9', startedAt: 'x' }));
    assert.equal(await ipam.hostIndex.fillStep(), 'waiting');
    // the old host keeps working meanwhile: its record has no entry, and the new host's reconcile frees it right
    const dropEntry = async (): Promise<void> => void (await lab.etcd.delete().prefix(`${root}/host/old/`));
    await allocate(ipam, 'old', 3);
    await dropEntry();
    const byScan = await new Reconciler(ipam, 'old', emptyHost, { graceMs: 0 }, log).run();
    assert.equal(byScan.freed.length, 3, 'freed by the pool scan while the index is incomplete');
    await lab.etcd.delete().key(oldHost);
    // the finding holds for a minute (the registry is read once a minute cluster-wide), then the pass may start
    assert.equal(await ipam.hostIndex.fillStep(), 'waiting');
    const minuteAgo = new Date(Date.now() - 61_000).toISOString();
    await lab.etcd.put(`${root}/layout`).value(JSON.stringify({ hostIndex: 'filling', olderSeenAt: minuteAgo }));

    // A new host's registration and the backfill, in pages (pageSize 7 < the records), resumable step by step.
    await lab.etcd
      .put(`${prefix}/hosts/new`)
      .value(JSON.stringify({ hostId: 'new', hostname: 'n', version: '1', startedAt: 'x', ipamLayout: 1 }));
    let steps = 0;
    for (let step = await ipam.hostIndex.fillStep(); step !== 'complete'; step = await ipam.hostIndex.fillStep()) {
      assert.notEqual(step, 'waiting');
      steps++;
      // a step repeated (a lost reply, another host's backfill) changes nothing
      if (steps === 2)
        assert.notEqual(await new EtcdStores(lab.etcd, prefix, log).ipam.hostIndex.fillStep(), 'waiting');
    }
    assert.equal(await assertIndexExact(prefix, 'after the backfill'), 32);
    assert.equal(await ipam.hostIndex.complete(), true);
    const fromIndex = await new Reconciler(ipam, 'h1', emptyHost, { graceMs: 0 }, log).run();
    assert.equal(fromIndex.freed.length, 20);
    assert.equal(await assertIndexExact(prefix, 'after the reconcile from the index'), 12);
  },
);

test('a stale index entry (its record freed by an older version) is dropped by the reconcile', { skip }, async () => {
  const prefix = fresh();
  const { ipam } = await withPool(prefix);
  await fillIndex(ipam);
  const [a] = await allocate(ipam, 'h1', 1);
  // an older version frees the address: the record and the bit go, the entry stays
  await lab.etcd.delete().key(`${prefix}/ipam/v1/pool/10.45.0.0_24/addr/${a}`);
  const result = await new Reconciler(ipam, 'h1', emptyHost, { graceMs: 0 }, log).run();
  assert.deepEqual(result.freed, []);
  assert.deepEqual((await recordsAndIndex(prefix)).index, [], 'the stale entry went');
});

test(
  'fsck finds missing and stale index entries; --repair drops the stale and refills the missing',
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = await withPool(prefix);
    await fillIndex(ipam);
    const [a, b] = await allocate(ipam, 'h1', 2);
    const root = `${prefix}/ipam/v1`;
    await lab.etcd.delete().key(`${root}/host/h1/addr/10.45.0.0_24/${a}`);
    await lab.etcd.put(`${root}/host/h9/addr/10.45.0.0_24/${b}`).value(JSON.stringify({ since: 'x', poolId }));
    const findings = await fsck(ipam);
    assert.deepEqual(
      findings.map((f) => [f.kind, f.what, f.hostId]),
      [
        ['index-missing', a, 'h1'],
        ['index-stale', b, 'h9'],
      ],
    );
    await repairIndex(ipam, findings);
    const fresher = new EtcdStores(lab.etcd, prefix, log).ipam;
    assert.equal(await fresher.hostIndex.complete(), false, 'a new pass started');
    await fillIndex(fresher);
    assert.deepEqual(await fsck(fresher), []);
    assert.equal(await assertIndexExact(prefix, 'after the repair'), 2);
  },
);

/** Bytes etcd sent to clients (its own /metrics): what a reconcile reads, whatever client or page size. */
async function etcdSentBytes(): Promise<number> {
  const text = await (await fetch(`${lab.cluster.endpoints[0] ?? ''}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('etcd_network_client_grpc_sent_bytes_total'))
    .reduce((n, l) => n + Number(l.split(' ')[1]), 0);
}

/** What etcd sends for one idle reconcile of `hostId` holding `held` (the mean of three rounds after a first). */
function idleReconcileCost(ipam: IpamStores, hostId: string, held: Set<string>): () => Promise<number> {
  const idle = {
    view: async () => ({ held, complete: new Set<string>(), incomplete: new Map(), dockerComplete: true }),
  };
  const reconciler = new Reconciler(ipam, hostId, idle, { graceMs: 0 }, log);
  return async () => {
    await reconciler.run();
    const before = await etcdSentBytes();
    for (let i = 0; i < 3; i++) assert.deepEqual((await reconciler.run()).freed, []);
    return ((await etcdSentBytes()) - before) / 3;
  };
}

test("an idle host's reconcile reads what it holds, not what the other hosts hold", { skip }, async () => {
  const prefix = fresh();
  const { ipam } = await withPool(prefix);
  await fillIndex(ipam);
  const cost = idleReconcileCost(ipam, 'h0', new Set(await allocate(ipam, 'h0', 30)));
  const alone = await cost();
  for (let h = 1; h <= 6; h++) await allocate(ipam, `h${h}`, 30);
  const among = await cost();
  // 7x the records in the pool; the host's own reads stay the same (the metrics reads add a little)
  assert.ok(among < alone * 1.1, `idle reconcile: ${alone} bytes alone, ${among} among 6 other hosts`);
});

test(
  "an idle host's reconcile reads its own claim, not the claims of the hosts that join its pool",
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = await withPool(prefix);
    await fillIndex(ipam);
    const claim = (hostId: string) =>
      new PoolService(ipam.pools, hostId, log).requestPool(v4('10.45.0.0/24', '10.45.0.0/24'));
    await claim('h0');
    const cost = idleReconcileCost(ipam, 'h0', new Set(await allocate(ipam, 'h0', 10)));
    const alone = await cost();
    for (let h = 1; h <= 30; h++) {
      await claim(`h${h}`);
      await allocate(ipam, `h${h}`, 5);
    }
    assert.equal(
      (await ipam.pools.read(ref().subnet))?.config.claims.length,
      32,
      'setup, h0 and 30 others hold claims',
    );
    const among = await cost();
    // 32 claim keys and 160 records in the pool; the host reads its own claim key and index (the metrics reads add a little)
    assert.ok(among < alone * 1.1, `idle reconcile: ${alone} bytes alone, ${among} among 30 other claiming hosts`);
  },
);
