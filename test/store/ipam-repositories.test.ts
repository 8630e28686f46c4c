import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { getBit, withBit } from '../../src/ipam/core/bitmap.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { claimPool } from '../../src/ipam/core/pool-rules.js';
import { AllocationService } from '../../src/ipam/services/allocation-service.js';
import { PoolService } from '../../src/ipam/services/pool-service.js';
import { emptyBitmap } from '../../src/ipam/model/block.js';
import type { PoolConfig } from '../../src/ipam/model/records.js';
import type { PoolRepository } from '../../src/ipam/ports.js';
import { parseSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { EtcdIo } from '../../src/store/etcd-io.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { missing } from '../harness/requirements.js';
import { v4 } from '../harness/ipam-requests.js';

/** The etcd repositories against a real etcd: the stored layout reads back, and compares come from what was read. */
const skip = missing('etcd');
const subnet = parseSubnet('10.44.0.0/24');
const fresh = (): string => `/repo-${randomBytes(4).toString('hex')}`;
const config: PoolConfig = {
  subnet: '10.44.0.0/24',
  ranges: [{ start: '10.44.0.10', end: '10.44.0.20', origin: 'admin', createdAt: '2026-01-01T00:00:00.000Z' }],
  hostRanges: [],
  reservations: [],
  claims: [],
};

const lab = etcdFixture(skip);

/** A pool as earlier versions wrote it, key by key (the layout documented in store/keys.ts). */
async function seed(prefix: string): Promise<void> {
  const root = `${prefix}/ipam/v1`;
  await lab.etcd.put(`${root}/pools`).value(JSON.stringify({ subnets: ['10.44.0.0/24'] }));
  await lab.etcd.put(`${root}/pool/10.44.0.0_24/config`).value(JSON.stringify(config));
  await lab.etcd.put(`${root}/pool/10.44.0.0_24/block/0`).value(Buffer.from(withBit(emptyBitmap(), 11, true)));
  await lab.etcd
    .put(`${root}/pool/10.44.0.0_24/addr/10.44.0.11`)
    .value(JSON.stringify({ hostId: 'old', since: 'then', poolId: '10.44.0.0/24' }));
  await lab.etcd.put(`${root}/pool/10.44.0.0_24/addr/10.44.0.12`).value('{not json');
}

test('data in the stored layout reads back through the repositories', { skip }, async () => {
  const prefix = fresh();
  await seed(prefix);
  const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
  assert.deepEqual(
    (await ipam.pools.listSubnets()).map((s) => s.prefix),
    [24],
  );
  assert.deepEqual((await ipam.pools.readAll())[0]?.config, config);
  const view = await ipam.blocks.read(subnet, 0n, ['10.44.0.11', '10.44.0.12', '10.44.0.13']);
  assert.ok(view);
  assert.equal(view.bits[1], 0b1000, 'bit 11');
  assert.deepEqual(view.assignments.get('10.44.0.11'), {
    assignment: { hostId: 'old', since: 'then', poolId: '10.44.0.0/24' },
  });
  assert.equal(view.assignments.get('10.44.0.12'), 'unreadable');
  assert.equal(view.assignments.has('10.44.0.13'), false);
  assert.deepEqual(
    (await ipam.addresses.list(subnet)).map((a) => a.address),
    ['10.44.0.11', '10.44.0.12'],
  );
  assert.equal(await ipam.addresses.count(subnet), 2);
});

test(
  'a block commit fails when the block changed after the read, and writes the documented keys when not',
  { skip },
  async () => {
    const prefix = fresh();
    await seed(prefix);
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const view = await ipam.blocks.read(subnet, 0n, ['10.44.0.11']);
    assert.ok(view);
    await lab.etcd.put(`${prefix}/ipam/v1/pool/10.44.0.0_24/block/0`).value(Buffer.from(withBit(view.bits, 12, true)));
    const assignment = { hostId: 'h1', since: 'now', poolId: '10.44.0.0/24' };
    assert.equal(
      await ipam.blocks.commit(view, {
        bits: withBit(view.bits, 13, true),
        nodes: [],
        create: [{ address: '10.44.0.13', assignment }],
      }),
      undefined,
    );
    assert.equal(
      await lab.etcd.get(`${prefix}/ipam/v1/pool/10.44.0.0_24/addr/10.44.0.13`).string(),
      null,
      'nothing written',
    );
    const again = await ipam.blocks.read(subnet, 0n, ['10.44.0.11']);
    assert.ok(again);
    const written = await ipam.blocks.commit(again, {
      bits: withBit(withBit(again.bits, 13, true), 11, false),
      nodes: [],
      create: [{ address: '10.44.0.13', assignment }],
      remove: ['10.44.0.11'],
    });
    assert.ok(written);
    assert.deepEqual(
      JSON.parse((await lab.etcd.get(`${prefix}/ipam/v1/pool/10.44.0.0_24/addr/10.44.0.13`).string()) ?? ''),
      assignment,
    );
    assert.equal(await lab.etcd.get(`${prefix}/ipam/v1/pool/10.44.0.0_24/addr/10.44.0.11`).string(), null);
    // the written block is cached as written: taking it gives the new bits, and it commits without a read
    const cached = ipam.blocks.takeCached(subnet, 0n);
    assert.equal(cached?.bits[1], 0b110000, 'bits 12 and 13');
  },
);

test('a pool update retries when an address or block it read changed before its commit', { skip }, async () => {
  const prefix = fresh();
  await seed(prefix);
  const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
  let attempts = 0;
  await assert.rejects(
    ipam.pools.update('reserve', subnet, async (tx) => {
      attempts++;
      const held = await tx.assignment('10.44.0.15');
      if (held) throw new FlatnetError('conflict', 'taken');
      // another writer takes the address between this read and the commit
      if (attempts === 1) await lab.etcd.put(`${prefix}/ipam/v1/pool/10.44.0.0_24/addr/10.44.0.15`).value('{}');
      return { result: undefined, next: { ...(tx.current ?? config), gateway: '10.44.0.15' } };
    }),
    (e: unknown) => e instanceof FlatnetError && e.kind === 'conflict',
  );
  assert.equal(attempts, 2);
  attempts = 0;
  await ipam.pools.update('drop', subnet, async (tx) => {
    attempts++;
    await tx.blocks();
    if (attempts === 1)
      await lab.etcd.put(`${prefix}/ipam/v1/pool/10.44.0.0_24/block/1`).value(Buffer.from(emptyBitmap()));
    return { result: undefined, next: tx.current ?? config };
  });
  assert.equal(attempts, 2, 'a new block key after the read made the first commit fail');
});

test(
  'an allocation does not spin on a record its block calls free: the bit is set in etcd and the allocation goes on',
  { skip },
  async () => {
    const prefix = fresh();
    // the seed has 10.44.0.12's record (unreadable) without its bit: the second address the allocator would pick
    await seed(prefix);
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const got = await new AllocationService(ipam.blocks, ipam.retry, 'h1').allocate(
      parsePoolId('10.44.0.0/24'),
      '10.44.0.0/24',
      [{}, {}],
    );
    assert.deepEqual(got, ['10.44.0.10', '10.44.0.13']);
    const block = await lab.etcd.get(`${prefix}/ipam/v1/pool/10.44.0.0_24/block/0`).buffer();
    assert.ok(
      block && [10, 11, 12, 13].every((b) => getBit(Uint8Array.from(block), b)),
      'the stored block marks 10.44.0.12 used',
    );
    assert.equal(
      await lab.etcd.get(`${prefix}/ipam/v1/pool/10.44.0.0_24/addr/10.44.0.12`).string(),
      '{not json',
      'the record is left as it was',
    );
  },
);

test(
  'a pool update that read the blocks of one interval conflicts only with writes to those blocks',
  { skip },
  async () => {
    const prefix = fresh();
    const wide = parseSubnet('10.45.0.0/16');
    const root = `${prefix}/ipam/v1/pool/10.45.0.0_16`;
    const wideConfig: PoolConfig = {
      ...config,
      subnet: '10.45.0.0/16',
      ranges: [{ start: '10.45.0.1', end: '10.45.255.254', origin: 'admin', createdAt: '2026-01-01T00:00:00.000Z' }],
    };
    await lab.etcd.put(`${prefix}/ipam/v1/pools`).value(JSON.stringify({ subnets: ['10.45.0.0/16'] }));
    await lab.etcd.put(`${root}/config`).value(JSON.stringify(wideConfig));
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    // blocks 0x0f-0x10 (10.45.15.0 - 10.45.16.255): keys "0f" and "10" of two hex digits
    const within = { start: 15n * 256n, end: 16n * 256n + 255n };
    const attemptsWhile = async (key: string): Promise<number> => {
      let attempts = 0;
      await ipam.pools.update('check', wide, async (tx) => {
        attempts++;
        await tx.blocks(within);
        if (attempts === 1)
          await lab.etcd.put(`${root}/block/${key}`).value(Buffer.from(withBit(emptyBitmap(), 1, true)));
        return { result: undefined, next: tx.current ?? wideConfig };
      });
      return attempts;
    };
    for (const outside of ['0e', '11', 'ff', '01'])
      assert.equal(await attemptsWhile(outside), 1, `a write to block ${outside} does not fail the commit`);
    for (const inside of ['0f', '10']) assert.equal(await attemptsWhile(inside), 2, `a write to block ${inside} does`);
  },
);

test(
  'listings page through a pool whose records would not fit in one reply (gRPC caps a message at 4 MiB)',
  { skip },
  async () => {
    const prefix = fresh();
    await seed(prefix);
    const root = `${prefix}/ipam/v1/pool/10.44.0.0_24`;
    // 48 records of 100 kB (unreadable, but listed): 4.8 MB under the prefix
    const big = 'x'.repeat(100_000);
    for (let i = 100; i < 148; i++) await lab.etcd.put(`${root}/addr/10.44.0.${i}`).value(big);
    const whole = new EtcdIo(lab.etcd, silentLogger(), { prefix });
    await assert.rejects(
      whole.readRange(`${root}/addr/`, `${root}/addr0`),
      /etcd refused the request \(range read\).*larger than max/,
      'one range read is over the cap, said at once',
    );
    const paged = new EtcdStores(lab.etcd, prefix, silentLogger(), { pageSize: 7 });
    const listed = await paged.ipam.addresses.list(subnet);
    const expected = ['10.44.0.11', '10.44.0.12', ...Array.from({ length: 48 }, (_, i) => `10.44.0.${100 + i}`)].sort();
    assert.deepEqual(listed.map((a) => a.address).sort(), expected, 'every record once, across 8 pages');
    // page boundaries fall between real records too: allocations listed through the admin, 3 to a page
    await lab.etcd.delete().prefix(`${root}/addr/`);
    const small = new EtcdStores(lab.etcd, prefix, silentLogger(), { pageSize: 3 });
    await new AllocationService(small.ipam.blocks, small.ipam.retry, 'h1').allocate(
      parsePoolId('10.44.0.0/24'),
      '10.44.0.0/24',
      Array.from({ length: 8 }, () => ({})),
    );
    const held = (await small.ipam.addresses.list(subnet)).map((a) => a.address);
    assert.equal(held.length, 8);
    assert.equal(new Set(held).size, 8, 'each once');
  },
);

test(
  'claims live in one key per host: a network create or rm on another host does not fail an allocation; embedded claims move out',
  { skip },
  async () => {
    const prefix = fresh();
    await seed(prefix);
    const root = `${prefix}/ipam/v1/pool/10.44.0.0_24`;
    // as older versions wrote it: the claims inside the config
    const old = { hostId: 'old', poolId: '10.44.0.0/24', subPool: '', since: '2026-01-01T00:00:00.000Z' };
    await lab.etcd.put(`${root}/config`).value(JSON.stringify({ ...config, claims: [old] }));
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    assert.deepEqual((await ipam.pools.read(subnet))?.config.claims, [old], 'embedded claims still read');

    // the next claim write moves them to the claim keys
    await new PoolService(ipam.pools, 'h2', silentLogger()).requestPool(v4('10.44.0.0/24'));
    assert.deepEqual(JSON.parse((await lab.etcd.get(`${root}/config`).string()) ?? '').claims, []);
    assert.deepEqual(JSON.parse((await lab.etcd.get(`${root}/claim/old`).string()) ?? ''), [old]);
    assert.deepEqual(
      JSON.parse((await lab.etcd.get(`${root}/claim/h2`).string()) ?? '').map((c: { hostId: string }) => c.hostId),
      ['h2'],
    );
    assert.deepEqual((await ipam.pools.read(subnet))?.config.claims.map((c) => c.hostId).sort(), ['h2', 'old']);

    // h1 read its block; h3 creates and removes a network on the pool; h1's allocation still commits
    const view = await ipam.blocks.read(subnet, 0n, ['10.44.0.13']);
    assert.ok(view);
    const configRev = (await lab.etcd.get(`${root}/config`).exec()).kvs[0]?.mod_revision;
    const h3 = new PoolService(ipam.pools, 'h3', silentLogger());
    await h3.requestPool(v4('10.44.0.0/24'));
    await h3.releasePool('10.44.0.0/24');
    assert.equal(
      (await lab.etcd.get(`${root}/config`).exec()).kvs[0]?.mod_revision,
      configRev,
      'the config key was not written',
    );
    assert.equal(
      await lab.etcd.get(`${root}/claim/h3`).string(),
      '[]',
      'the last claim of a host leaves its key empty (never deleted alone)',
    );
    const assignment = { hostId: 'h1', since: 'now', poolId: '10.44.0.0/24' };
    assert.ok(
      await ipam.blocks.commit(view, {
        bits: withBit(view.bits, 13, true),
        nodes: [],
        create: [{ address: '10.44.0.13', assignment }],
      }),
    );
    // nothing holds it: every claim key is empty (the operator's range keeps the pool; the keys go with it)
    await new PoolService(ipam.pools, 'old', silentLogger()).releasePool('10.44.0.0/24');
    await new PoolService(ipam.pools, 'h2', silentLogger()).releasePool('10.44.0.0/24');
    assert.deepEqual(Object.values(await lab.etcd.getAll().prefix(`${root}/claim/`).strings()), ['[]', '[]', '[]']);
    assert.deepEqual((await ipam.pools.read(subnet))?.config.claims, []);
  },
);

test(
  'a claim write fails when its host released its claim after the read: the release is not undone',
  { skip },
  async () => {
    const prefix = fresh();
    await seed(prefix);
    const root = `${prefix}/ipam/v1/pool/10.44.0.0_24`;
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const h2 = new PoolService(ipam.pools, 'h2', silentLogger());
    await h2.requestPool(v4('10.44.0.0/24'));
    const ref = parsePoolId('10.44.0.0/24');
    let attempts = 0;
    // h2 re-creates its network while its journaled release of the old one lands: the release empties the
    // claim key between the create's read and its commit.
    await ipam.pools.update('create the pool', subnet, async (tx) => {
      attempts++;
      if (attempts === 1) await h2.releasePool('10.44.0.0/24');
      return { result: undefined, next: claimPool(tx.current ?? config, ref, 'h2', '10.44.0.0/24', `new-${attempts}`) };
    });
    assert.equal(attempts, 2, 'the first commit failed: the claim key it read had changed');
    const claims = JSON.parse((await lab.etcd.get(`${root}/claim/h2`).string()) ?? '[]') as { since: string }[];
    assert.deepEqual(
      claims.map((c) => c.since),
      ['new-2'],
      "one claim: the new network's",
    );
  },
);

test(
  'two hosts releasing their --ip-range networks at once: neither keeps the range for the other, the pool goes',
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const withRange = { ...v4('10.44.0.0/24'), subPool: '10.44.0.128/25' };
    for (const h of ['a', 'b']) await new PoolService(ipam.pools, h, silentLogger()).requestPool(withRange);
    // Both releases read before either commits; each is its own host's change and sees only its own claim, so
    // neither can drop the range: the tidy after each release reads every host, and the later one sees both gone.
    let arrived = 0;
    let bothRead: () => void = () => undefined;
    const gate = new Promise<void>((res) => (bothRead = res));
    const racing: PoolRepository = {
      listSubnets: () => ipam.pools.listSubnets(),
      read: (s) => ipam.pools.read(s),
      readAll: () => ipam.pools.readAll(),
      claimsOf: (h) => ipam.pools.claimsOf(h),
      isHeld: (s, a) => ipam.pools.isHeld(s, a),
      update: (what, s, decide, prefetch) =>
        ipam.pools.update(
          what,
          s,
          async (tx) => {
            const d = await decide(tx);
            if (++arrived === 2) bothRead();
            await gate;
            return d;
          },
          prefetch,
        ),
    };
    await Promise.all(
      ['a', 'b'].map((h) => new PoolService(racing, h, silentLogger()).releasePool('10.44.0.0/24|10.44.0.128/25')),
    );
    assert.ok(arrived >= 3, `the releases and at least one tidy decided (${arrived} decisions)`);
    assert.equal(await ipam.pools.read(subnet), undefined, 'no claim left: the pool and its Docker range are gone');
  },
);
