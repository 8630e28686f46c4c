import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { releaseClaim } from '../../src/ipam/core/pool-rules.js';
import { reserve } from '../../src/ipam/core/reservations.js';
import type { PoolConfig } from '../../src/ipam/model/records.js';
import type { IpamStores, PoolRepository, PoolTxn } from '../../src/ipam/ports.js';
import { AddressService } from '../../src/ipam/services/address-service.js';
import { PoolService } from '../../src/ipam/services/pool-service.js';
import { parseSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';

/**
 * Pools shared by many hosts against a real etcd: the config holds nothing per host, a host's RequestPool,
 * ReleasePool and gateway hold conflict with no other host's, and only dropping what nobody uses (the tidy) reads
 * and compares every host, so the races the whole-pool compare guards against stay guarded.
 */
const skip = missing('etcd');
const subnet = parseSubnet('10.46.0.0/24');
const fresh = (): string => `/hosts-${randomBytes(4).toString('hex')}`;
const withRange = {
  addressSpace: 'FlatLocal',
  pool: '10.46.0.0/24',
  subPool: '10.46.0.128/25',
  options: {},
  v6: false,
};
const poolId = '10.46.0.0/24|10.46.0.128/25';
const ref = parsePoolId(poolId);
const gw = '10.46.0.1';

const lab = etcdFixture(skip, { timeoutMs: 30_000 });

/** The repository with a hook around every decision (counting attempts, or racing another host in). */
function hooked(pools: PoolRepository, hook: (what: string, tx: PoolTxn) => Promise<void> | void): PoolRepository {
  return {
    listSubnets: () => pools.listSubnets(),
    read: (s) => pools.read(s),
    readAll: () => pools.readAll(),
    claimsOf: (h) => pools.claimsOf(h),
    isHeld: (s, a) => pools.isHeld(s, a),
    update: (what, s, decide, o) =>
      pools.update(
        what,
        s,
        async (tx) => {
          await hook(what, tx);
          return decide(tx);
        },
        o,
      ),
  };
}

interface Host {
  pools: PoolService;
  addresses: AddressService;
}

function host(ipam: IpamStores, id: string, pools: PoolRepository = ipam.pools): Host {
  return {
    pools: new PoolService(pools, id, silentLogger()),
    addresses: new AddressService({ ...ipam, pools }, id, silentLogger()),
  };
}

async function stored(prefix: string): Promise<PoolConfig> {
  return JSON.parse(
    (await lab.etcd.get(`${prefix}/ipam/v1/pool/10.46.0.0_24/config`).string()) ?? 'null',
  ) as PoolConfig;
}

async function revisionOf(key: string): Promise<string | undefined> {
  return (await lab.etcd.get(key).exec()).kvs[0]?.mod_revision;
}

test(
  "the config holds nothing per host; a network create or rm on one host fails no other host's claim or hold",
  { skip },
  async () => {
    const prefix = fresh();
    const root = `${prefix}/ipam/v1/pool/10.46.0.0_24`;
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    for (const id of ['h1', 'h2']) {
      const h = host(ipam, id);
      await h.pools.requestPool(withRange);
      await h.addresses.reserve(ref, poolId, 'gateway', '');
    }
    const config = await stored(prefix);
    assert.deepEqual(config.claims, []);
    assert.deepEqual(config.reservations, [{ address: gw, kind: 'gateway', holders: { '~keyed': 1 } }]);
    assert.equal(await lab.etcd.get(`${root}/hold/${gw}/h1`).string(), '{"refs":1}');
    assert.deepEqual((await ipam.pools.read(subnet))?.config.reservations[0]?.holders, { h1: 1, h2: 1 });

    // h3 creates and removes its network (claim + gateway hold) between h1's read and h1's commit, twice over
    const configRev = await revisionOf(`${root}/config`);
    const h3 = host(ipam, 'h3');
    const attempts = { claim: 0, hold: 0 };
    const racing = hooked(ipam.pools, async (what) => {
      const n = what === 'create the pool' ? ++attempts.claim : what.startsWith('reserve') ? ++attempts.hold : 0;
      if (n !== 1) return;
      await h3.pools.requestPool(withRange);
      await h3.addresses.reserve(ref, poolId, 'gateway', '');
      await h3.addresses.releaseReservation(ref, gw);
      await h3.pools.releasePool(poolId);
    });
    const h1 = host(ipam, 'h1', racing);
    await h1.pools.requestPool(withRange);
    await h1.addresses.reserve(ref, poolId, 'gateway', '');
    assert.deepEqual(attempts, { claim: 1, hold: 1 }, 'h1 committed at its first attempt both times');
    assert.equal(await revisionOf(`${root}/config`), configRev, 'nobody wrote the config');
    assert.equal(await lab.etcd.get(`${root}/hold/${gw}/h1`).string(), '{"refs":2}');
    assert.equal(await lab.etcd.get(`${root}/hold/${gw}/h3`).string(), null, 'a hold key goes at 0');
    assert.equal(await lab.etcd.get(`${root}/claim/h3`).string(), '[]', 'a claim key stays, empty');
  },
);

test(
  '200 hosts create the same network at once: every RequestPool, gateway and ReleasePool succeeds, with bounded attempts',
  { skip },
  async (t) => {
    const prefix = fresh();
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const attempts = new Map<string, number>();
    const hosts = Array.from({ length: 200 }, (_, i) => {
      const id = `host-${String(i).padStart(3, '0')}`;
      return {
        id,
        ...host(
          ipam,
          id,
          hooked(ipam.pools, (what) => void attempts.set(`${id}|${what}`, (attempts.get(`${id}|${what}`) ?? 0) + 1)),
        ),
      };
    });
    const worst = (what: string): { max: number; total: number } => {
      const counts = hosts.map((h) => attempts.get(`${h.id}|${what}`) ?? 0);
      return { max: Math.max(...counts), total: counts.reduce((a, b) => a + b, 0) };
    };

    // every node makes the network with its first task: the pool does not exist yet
    await Promise.all(hosts.map((h) => h.pools.requestPool(withRange)));
    const created = worst('create the pool');
    assert.ok(created.max <= 3, `RequestPool: at most 3 attempts per host (${JSON.stringify(created)})`);
    assert.ok(
      created.total <= 2 * hosts.length,
      `RequestPool: one retry per host at most on average (${created.total})`,
    );
    assert.equal((await ipam.pools.read(subnet))?.config.claims.length, 200);

    await Promise.all(hosts.map((h) => h.addresses.reserve(ref, poolId, 'gateway', '')));
    const held = worst('reserve gateway address');
    assert.ok(held.max <= 3, `gateway: at most 3 attempts per host (${JSON.stringify(held)})`);
    assert.equal(Object.keys((await ipam.pools.read(subnet))?.config.reservations[0]?.holders ?? {}).length, 200);
    assert.equal(JSON.stringify(await stored(prefix)).includes('host-'), false, 'no host id in the config');

    // and the service goes: every node drops its gateway hold, then its network, at once
    await Promise.all(hosts.map((h) => h.addresses.releaseReservation(ref, gw)));
    assert.deepEqual(
      (await ipam.pools.read(subnet))?.config.reservations,
      [],
      'the last hold gone, the tidy dropped it',
    );
    await Promise.all(hosts.map((h) => h.pools.releasePool(poolId)));
    const released = worst('release the pool');
    const tidied = worst('tidy the pool');
    t.diagnostic(`attempts (max per host / total): ${JSON.stringify({ created, held, released, tidied })}`);
    assert.equal(released.max, 1, `ReleasePool: no host's release conflicted (${JSON.stringify(released)})`);
    assert.equal(await ipam.pools.read(subnet), undefined, 'the last release tidied: range, reservation and pool gone');
    assert.deepEqual(await lab.etcd.getAll().prefix(`${prefix}/ipam/v1/pool/`).keys(), []);
  },
);

test('the pool deletion racing a new claim: the claim wins, the pool and its range stay', { skip }, async () => {
  const prefix = fresh();
  const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
  await host(ipam, 'h1').pools.requestPool(withRange);
  const h2 = host(ipam, 'h2');
  let tidies = 0;
  // h1's tidy read "no claim left"; h2's RequestPool (its own keys only) commits before the tidy's delete
  const racing = hooked(ipam.pools, async (what) => {
    if (what === 'tidy the pool' && ++tidies === 1) await h2.pools.requestPool(withRange);
  });
  await host(ipam, 'h1', racing).pools.releasePool(poolId);
  assert.equal(tidies, 2, 'the delete failed its compare of the claim keys and decided again');
  const after = (await ipam.pools.read(subnet))?.config;
  assert.deepEqual(
    [after?.claims.map((c) => c.hostId), after?.ranges.length],
    [['h2'], 1],
    "h2's claim and its range stay",
  );
});

test(
  'a new claim racing the pool deletion: the claim fails its config compare and creates the pool again',
  { skip },
  async () => {
    const prefix = fresh();
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    const h1 = host(ipam, 'h1');
    await h1.pools.requestPool(withRange);
    let claims = 0;
    // h2 read the pool (claim's first attempt); h1's release and tidy delete it before h2's commit
    const racing = hooked(ipam.pools, async (what) => {
      if (what === 'create the pool' && ++claims === 1) await h1.pools.releasePool(poolId);
    });
    await host(ipam, 'h2', racing).pools.requestPool(withRange);
    assert.equal(claims, 2);
    const after = (await ipam.pools.read(subnet))?.config;
    assert.deepEqual([after?.claims.map((c) => c.hostId), after?.ranges.length], [['h2'], 1]);
  },
);

test('a reservation drop racing a new hold of it: the hold wins, the gateway stays reserved', { skip }, async () => {
  const prefix = fresh();
  const root = `${prefix}/ipam/v1/pool/10.46.0.0_24`;
  const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
  const [h1, h2] = [host(ipam, 'h1'), host(ipam, 'h2')];
  for (const h of [h1, h2]) await h.pools.requestPool(withRange);
  await h1.addresses.reserve(ref, poolId, 'gateway', '');
  let tidies = 0;
  const racing = hooked(ipam.pools, async (what) => {
    if (what === 'tidy the pool' && ++tidies === 1) await h2.addresses.reserve(ref, poolId, 'gateway', '');
  });
  await host(ipam, 'h1', racing).addresses.releaseReservation(ref, gw);
  assert.equal(tidies, 2, 'the drop failed its compare of the hold keys and decided again');
  assert.deepEqual((await ipam.pools.read(subnet))?.config.reservations, [
    { address: gw, kind: 'gateway', holders: { h2: 1 } },
  ]);
  assert.ok(await lab.etcd.get(`${root}/config`).string());
});

test(
  'rolling upgrade: a config of the older shape reads, each host moves its own holds out, an older host keeps working',
  { skip },
  async () => {
    const prefix = fresh();
    const root = `${prefix}/ipam/v1/pool/10.46.0.0_24`;
    // as the previous version wrote it: holders per host in the config, claims in claim keys
    const claim = (hostId: string) => ({
      hostId,
      poolId,
      subPool: '10.46.0.128/25',
      since: '2026-01-01T00:00:00.000Z',
    });
    const old: PoolConfig = {
      subnet: '10.46.0.0/24',
      ranges: [{ start: '10.46.0.128', end: '10.46.0.255', origin: 'docker', createdAt: '2026-01-01T00:00:00.000Z' }],
      hostRanges: [],
      reservations: [{ address: gw, kind: 'gateway', holders: { h1: 1, old: 1 } }],
      claims: [],
    };
    await lab.etcd.put(`${prefix}/ipam/v1/pools`).value(JSON.stringify({ subnets: ['10.46.0.0/24'] }));
    await lab.etcd.put(`${root}/config`).value(JSON.stringify(old));
    for (const h of ['h1', 'old']) await lab.etcd.put(`${root}/claim/${h}`).value(JSON.stringify([claim(h)]));
    const { ipam } = new EtcdStores(lab.etcd, prefix, silentLogger());
    assert.deepEqual((await ipam.pools.read(subnet))?.config.reservations[0]?.holders, { h1: 1, old: 1 });

    // h1 (upgraded) creates a second network: its hold moves to its key, the older host's stays where that host reads it
    const h1 = host(ipam, 'h1');
    await h1.pools.requestPool(withRange);
    await h1.addresses.reserve(ref, poolId, 'gateway', '');
    assert.deepEqual((await stored(prefix)).reservations[0]?.holders, { old: 1, '~keyed': 1 });
    assert.equal(await lab.etcd.get(`${root}/hold/${gw}/h1`).string(), '{"refs":2}');

    // the older host removes its network as that version does: its own entry goes, the pseudo holder keeps the
    // reservation (it drops a reservation only once its holders map is empty)
    const asOld = releaseClaim({ ...(await stored(prefix)), claims: [claim('old')] }, 'old', poolId).config;
    await lab.etcd.put(`${root}/config`).value(JSON.stringify({ ...asOld, claims: [] }));
    await lab.etcd.put(`${root}/claim/old`).value('[]');
    assert.deepEqual(asOld.reservations, [{ address: gw, kind: 'gateway', holders: { '~keyed': 1 } }]);
    // and an older host joining writes its entry beside the pseudo holder, which the newer hosts read as its hold
    const joined = reserve(await stored(prefix), 'old', 'gateway', gw);
    await lab.etcd.put(`${root}/config`).value(JSON.stringify(joined));
    assert.deepEqual((await ipam.pools.read(subnet))?.config.reservations[0]?.holders, { h1: 2, old: 1 });
    await lab.etcd.put(`${root}/config`).value(JSON.stringify(asOld));

    // h1 removes both networks: nobody holds anything, the tidy drops the pool
    await h1.addresses.releaseReservation(ref, gw);
    await h1.pools.releasePool(poolId);
    await h1.pools.releasePool(poolId);
    assert.equal(await ipam.pools.read(subnet), undefined);
  },
);
