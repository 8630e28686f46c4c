import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { getBit, withBit } from '../../src/ipam/core/bitmap.js';
import type { ClaimRecord, PoolConfig } from '../../src/ipam/model/records.js';
import type { BlockCommit, BlockSnapshot, IpamStores, PoolWatch, PoolWatchEvents } from '../../src/ipam/ports.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { PoolService } from '../../src/ipam/services/pool-service.js';
import { formatSubnet, parseSubnet, type Subnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { MemoryStores } from '../fakes/memory-stores.js';
import { MemoryPoolWatch } from '../fakes/pool-watch.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { kind, v4 } from '../harness/ipam-requests.js';
import { missing } from '../harness/requirements.js';
import { until } from '../harness/until.js';

/**
 * The IPAM store ports' contract: each scenario is written once and run against the in-memory fakes
 * (test/fakes/) and against the etcd stores on a real etcd, so that what the services' unit tests learn from the
 * fakes holds for etcd.
 */
const logger = silentLogger();
const etcdSkip = missing('etcd');
const lab = etcdFixture(etcdSkip);

interface Opened {
  stores: IpamStores;
  /** A pool watch on these stores that hears `events`. */
  watch(events: PoolWatchEvents): PoolWatch;
  close(): void;
}

/** Paged listings: the etcd stores read this many keys per page, the fake yields two records per page. */
const PAGE = 4;

const subjects: { name: string; skip: string | false; open(): Opened }[] = [
  {
    name: 'in-memory fakes',
    skip: false,
    open: () => {
      const stores = new MemoryStores();
      return { stores, watch: (events) => new MemoryPoolWatch(stores, events), close: () => undefined };
    },
  },
  {
    name: 'etcd stores',
    skip: etcdSkip,
    open: () => {
      const es = new EtcdStores(lab.etcd, `/contract-${randomBytes(4).toString('hex')}`, logger, { pageSize: PAGE });
      return { stores: es.ipam, watch: (events) => es.watchPools(events, logger), close: () => es.io.close() };
    },
  },
];

const assignment = (hostId: string) => ({ hostId, since: '2026-01-01T00:00:00.000Z', poolId: 'FlatLocal/x' });
const offsetOf = (address: string): number => Number(address.split('.')[3]);
/** A create commit of these addresses (all in block 0 of a /24) for one host. */
function creating(view: BlockSnapshot, hostId: string, addresses: string[]): BlockCommit {
  let bits = view.bits;
  for (const a of addresses) bits = withBit(bits, offsetOf(a), true);
  return {
    bits,
    nodes: view.nodes.map(() => undefined),
    create: addresses.map((address) => ({ address, assignment: assignment(hostId) })),
  };
}
const claim = (hostId: string): ClaimRecord => ({
  hostId,
  poolId: `FlatLocal/${hostId}`,
  subPool: '',
  since: '2026-01-01T00:00:00.000Z',
});
const withClaim = (c: PoolConfig | undefined, hostId: string): PoolConfig => {
  assert.ok(c, 'the pool exists');
  return { ...c, claims: [...c.claims, claim(hostId)] };
};

/** A /24 pool with an admin range (one block: block 0 holds every address). */
async function pool(stores: IpamStores, third: number): Promise<Subnet> {
  await new IpamAdminService(stores, logger).addIpRange({ start: `10.90.${third}.10/24`, end: `10.90.${third}.200` });
  return parseSubnet(`10.90.${third}.0/24`);
}

async function indexed(stores: IpamStores, hostId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const page of stores.hostIndex.entries(hostId)) out.push(...page.map((e) => `${e.subnet}|${e.address}`));
  return out.sort();
}

const scenarios: { name: string; run(o: Opened): Promise<void> }[] = [
  {
    name: 'a block commit from a stale snapshot fails and writes nothing',
    async run({ stores }) {
      const subnet = await pool(stores, 1);
      const stale = await stores.blocks.read(subnet, 0n, ['10.90.1.11', '10.90.1.12']);
      assert.ok(stale);
      assert.ok(await stores.blocks.commit(stale, creating(stale, 'h1', ['10.90.1.11'])), 'the first commit lands');
      const lost = await stores.blocks.commit(stale, creating(stale, 'h2', ['10.90.1.12']));
      assert.equal(lost, undefined, 'a conflict, not an error');
      const now = await stores.blocks.read(subnet, 0n, ['10.90.1.11', '10.90.1.12']);
      assert.ok(now);
      assert.equal(getBit(now.bits, 11), true);
      assert.equal(getBit(now.bits, 12), false, 'the stale commit set no bit');
      assert.deepEqual([...now.assignments.keys()], ['10.90.1.11'], 'nor wrote an address record');
      assert.deepEqual(await indexed(stores, 'h2'), [], 'nor an index entry');
    },
  },
  {
    name: 'address records and the per-host index are written and deleted together',
    async run({ stores }) {
      const subnet = await pool(stores, 2);
      const cidr = formatSubnet(subnet);
      const view = await stores.blocks.read(subnet, 0n, ['10.90.2.20', '10.90.2.21']);
      assert.ok(view);
      const after = await stores.blocks.commit(view, creating(view, 'h1', ['10.90.2.20', '10.90.2.21']));
      assert.ok(after);
      assert.deepEqual((await stores.addresses.list(subnet)).map((r) => r.address).sort(), [
        '10.90.2.20',
        '10.90.2.21',
      ]);
      assert.deepEqual(await indexed(stores, 'h1'), [`${cidr}|10.90.2.20`, `${cidr}|10.90.2.21`]);

      // moving a held record to another host moves its index entry in the same write
      const moved = await stores.addresses.updateHeld(subnet, '10.90.2.21', (read) => {
        assert.ok(read && read !== 'unreadable');
        return { ...read.assignment, hostId: 'h2' };
      });
      assert.equal(moved, 'written');
      assert.deepEqual(await indexed(stores, 'h1'), [`${cidr}|10.90.2.20`]);
      assert.deepEqual(await indexed(stores, 'h2'), [`${cidr}|10.90.2.21`]);

      const held = await stores.blocks.read(subnet, 0n, ['10.90.2.20', '10.90.2.21']);
      assert.ok(held);
      let bits = withBit(held.bits, 20, false);
      bits = withBit(bits, 21, false);
      const freed = await stores.blocks.commit(held, {
        bits,
        nodes: held.nodes.map(() => undefined),
        remove: ['10.90.2.20', '10.90.2.21'],
      });
      assert.ok(freed);
      assert.deepEqual(await stores.addresses.list(subnet), []);
      assert.deepEqual(await indexed(stores, 'h1'), []);
      assert.deepEqual(await indexed(stores, 'h2'), []);
    },
  },
  {
    name: "one host's own pool change never conflicts with another host's",
    async run({ stores }) {
      const subnet = await pool(stores, 3);
      let attempts = 0;
      await stores.pools.update(
        'h1 claims',
        subnet,
        async (tx) => {
          attempts++;
          if (attempts === 1)
            await stores.pools.update('h2 claims', subnet, (t2) => ({ result: 1, next: withClaim(t2.current, 'h2') }), {
              onlyHost: 'h2',
            });
          assert.deepEqual(
            tx.current?.claims.map((c) => c.hostId),
            [],
            "a host's own read carries its own claims only",
          );
          return { result: 1, next: withClaim(tx.current, 'h1') };
        },
        { onlyHost: 'h1' },
      );
      assert.equal(attempts, 1, "h2's claim made meanwhile did not fail h1's commit");
      const read = await stores.pools.read(subnet);
      assert.deepEqual(read?.config.claims.map((c) => c.hostId).sort(), ['h1', 'h2']);
      assert.deepEqual(
        (await stores.pools.claimsOf('h2')).map((c) => c.hostId),
        ['h2'],
      );
    },
  },
  {
    name: 'a whole-pool update sees a claim made meanwhile',
    async run({ stores }) {
      const subnet = await pool(stores, 4);
      await stores.pools.update('h1 claims', subnet, (tx) => ({ result: 1, next: withClaim(tx.current, 'h1') }), {
        onlyHost: 'h1',
      });
      let attempts = 0;
      const seen = await stores.pools.update('tidy', subnet, async (tx) => {
        attempts++;
        if (attempts === 1)
          await stores.pools.update('h3 claims', subnet, (t3) => ({ result: 1, next: withClaim(t3.current, 'h3') }), {
            onlyHost: 'h3',
          });
        const current = tx.current;
        assert.ok(current);
        const claims = current.claims.map((c) => c.hostId).sort();
        return { result: claims, next: { ...current, claims: current.claims.filter((c) => c.hostId !== 'h1') } };
      });
      assert.equal(attempts, 2, "the first attempt's commit failed on h3's new claim");
      assert.deepEqual(seen, ['h1', 'h3'], 'the second attempt read it');
      const read = await stores.pools.read(subnet);
      assert.deepEqual(
        read?.config.claims.map((c) => c.hostId),
        ['h3'],
        "h3's claim survived the tidy",
      );
    },
  },
  {
    name: 'a commit within the capacity lands; one over the 128-operation limit is refused whole',
    async run({ stores }) {
      const subnet = await pool(stores, 5);
      const { costOf, total } = stores.blocks.capacity(subnet).creations(new Array<boolean>(256).fill(false));
      let fits = 0;
      for (let spent = 0; spent + costOf(fits) <= total; fits++) spent += costOf(fits);
      const addresses = Array.from({ length: 200 }, (_, i) => `10.90.5.${i + 20}`);
      const view = await stores.blocks.read(subnet, 0n);
      assert.ok(view);
      await assert.rejects(
        stores.blocks.commit(view, creating(view, 'h1', addresses.slice(0, 70))),
        (e: unknown) => kind('internal')(e) && /over etcd's txn limits/.test((e as Error).message),
      );
      assert.equal(await stores.addresses.count(subnet), 0, 'nothing of the refused txn was written');
      const again = await stores.blocks.read(subnet, 0n);
      assert.ok(again);
      assert.ok(await stores.blocks.commit(again, creating(again, 'h1', addresses.slice(0, fits))));
      assert.equal(await stores.addresses.count(subnet), fits);
    },
  },
  {
    name: 'paged listings return every record once, over several pages',
    async run({ stores }) {
      const subnet = await pool(stores, 6);
      const addresses = Array.from({ length: 9 }, (_, i) => `10.90.6.${i + 30}`);
      const view = await stores.blocks.read(subnet, 0n);
      assert.ok(view);
      assert.ok(await stores.blocks.commit(view, creating(view, 'h1', addresses)));
      let pages = 0;
      const paged: string[] = [];
      for await (const page of stores.addresses.pages(subnet)) {
        pages++;
        assert.ok(page.length <= PAGE, 'no page is larger than a page');
        paged.push(...page.map((r) => r.address));
      }
      assert.ok(pages > 1, 'more than one page');
      assert.deepEqual([...paged].sort(), [...addresses].sort());
      assert.equal(new Set(paged).size, paged.length, 'no record twice');
      assert.deepEqual((await stores.addresses.list(subnet)).map((r) => r.address).sort(), [...addresses].sort());
      assert.equal(await stores.addresses.count(subnet), addresses.length);
      let everyPages = 0;
      const every: string[] = [];
      for await (const page of stores.hostIndex.everyEntry()) {
        everyPages++;
        every.push(...page.map((e) => `${e.hostId}|${e.address}`));
      }
      assert.ok(everyPages > 1);
      assert.deepEqual(every.sort(), addresses.map((a) => `h1|${a}`).sort());
      assert.equal((await indexed(stores, 'h1')).length, addresses.length);
    },
  },
  {
    name: "the pool watch tells config changes of followed pools only, not a host's claim",
    async run({ stores, watch }) {
      const followed = await pool(stores, 7);
      const other = await pool(stores, 8);
      const heard: string[] = [];
      const w = watch({ changed: (s) => heard.push(formatSubnet(s)), resync: () => heard.push('resync') });
      const admin = new IpamAdminService(stores, logger);
      let next = 201;
      const addRange = async (third: number): Promise<void> => {
        const n = next++;
        await admin.addIpRange({ start: `10.90.${third}.${n}/24`, end: `10.90.${third}.${n}` });
      };
      /** Until nothing more is told for a moment (the real watch tells on its own schedule). */
      const quiet = async (): Promise<void> => {
        let seen = -1;
        await until('the watch to go quiet', async () => {
          if (heard.length === seen) return true;
          seen = heard.length;
          await sleep(200);
          return undefined;
        });
      };
      const cidr = formatSubnet(followed);
      try {
        w.follow([followed]);
        // a watch attaches on its own schedule: changes before that are not its business
        await until('the watch to attach', async () => {
          await addRange(7);
          return heard.includes(cidr) ? true : undefined;
        });
        await quiet();
        const mark = heard.length;
        await addRange(8);
        await new PoolService(stores.pools, 'h1', logger).requestPool(v4(cidr));
        await addRange(7);
        await until('the last change to be told', async () => (heard.length > mark ? true : undefined));
        await quiet();
        assert.deepEqual(heard.slice(mark), [cidr], "neither the other pool's change nor h1's claim was told");
        assert.ok(!heard.includes(formatSubnet(other)));
      } finally {
        await w.close();
      }
    },
  },
];

for (const subject of subjects)
  describe(subject.name, { skip: subject.skip }, () => {
    for (const s of scenarios)
      test(s.name, async () => {
        const opened = subject.open();
        try {
          await s.run(opened);
        } finally {
          opened.close();
        }
      });
  });
