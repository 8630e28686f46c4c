import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlatnetError } from '../../src/errors.js';
import { heldBack, oldestCooled } from '../../src/ipam/core/cooling-rules.js';
import { withOwner } from '../../src/ipam/core/owners.js';
import { stickyReuse } from '../../src/ipam/core/sticky.js';
import { decodeCooling, encodeCooling } from '../../src/ipam/model/cooling-record.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { OwnerService } from '../../src/ipam/services/owner-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import { poolWithRange } from '../fakes/pools.js';

/** Cooldown, sticky names and owner records decided over the in-memory ports (the etcd side: test/store, test/api). */
const POOL = '10.1.0.0/22';
const clock = { t: 1_000_000 };
const policy = { cooldownSec: 300, stickySec: 86_400 };
const opts = { policy, now: () => clock.t };
const bare = (cidr: string): string => cidr.split('/')[0] as string;

async function driverOn(range: [string, string], host = 'h1', p = policy) {
  const { stores, admin } = await poolWithRange(...range);
  const driver = new IpamDriverService(stores, host, silentLogger(), { cooling: { policy: p, now: () => clock.t } });
  const pool = await driver.requestPool({ addressSpace: 'FlatLocal', pool: POOL, subPool: '', options: {}, v6: false });
  return { stores, admin, driver, poolId: pool.poolId };
}

test('cooling entries round-trip through their stored bytes; a malformed value reads as nothing cooling', () => {
  const c = new Map([
    [7, { releasedAt: 1_700_000_000, parked: true }],
    [200, { releasedAt: 5, parked: false }],
  ]);
  assert.deepEqual(decodeCooling(encodeCooling(c)), c);
  assert.equal(decodeCooling(new Uint8Array(5)).size, 0);
  assert.equal(decodeCooling(undefined).size, 0);
});

test('held back for the cooldown, and for the sticky time when parked for a name', () => {
  assert.equal(heldBack({ releasedAt: 0, parked: false }, 299, policy), true);
  assert.equal(heldBack({ releasedAt: 0, parked: false }, 300, policy), false);
  assert.equal(heldBack({ releasedAt: 0, parked: true }, 300, policy), true);
  assert.equal(heldBack({ releasedAt: 0, parked: true }, 86_400, policy), false);
  assert.equal(heldBack({ releasedAt: 0, parked: false }, 0, { cooldownSec: 0, stickySec: 0 }), false);
});

test('at exhaustion: plain cooling before parked, then the oldest release', () => {
  const bits = new Uint8Array(32);
  const blocks = new Map([
    [
      0n,
      {
        bits,
        cooling: new Map([
          [1, { releasedAt: 10, parked: true }],
          [2, { releasedAt: 50, parked: false }],
        ]),
      },
    ],
    [1n, { bits, cooling: new Map([[3, { releasedAt: 40, parked: false }]]) }],
  ]);
  assert.equal(oldestCooled(blocks, [{ start: 0n, end: 1023n }])?.offset, 256n + 3n);
  assert.equal(oldestCooled(blocks, [{ start: 0n, end: 1n }])?.offset, 1n, 'only the parked one is allowed');
  assert.equal(oldestCooled(blocks, [{ start: 600n, end: 700n }]), undefined);
});

test('a released address is not handed out again during its cooldown; after it, it is', async () => {
  const { driver, poolId, admin } = await driverOn(['10.1.0.1/22', '10.1.0.4']);
  const a = bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address);
  await driver.releaseAddress(poolId, a);
  const b = bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address);
  assert.notEqual(b, a);
  const released = await admin.listReleased();
  assert.deepEqual(
    released.map((r) => [r.address, r.kind, r.hostId]),
    [[a, 'cooling', 'h1']],
  );
  assert.deepEqual(
    (await admin.listAssignments()).map((x) => x.address),
    [b],
    'ip list shows held addresses only',
  );
  assert.equal((await admin.poolSummaries())[0]?.used, 1, 'cooling addresses are not used');
  clock.t += 301;
  await driver.releaseAddress(poolId, b);
  const c = bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address);
  assert.equal(c, a, 'the lowest free address again once its cooldown is over');
  assert.ok(!(await admin.listReleased()).some((r) => r.address === a), 'its released record went with the reuse');
});

test('cooldown never becomes exhaustion: the address that cooled longest is reused', async () => {
  const { driver, poolId } = await driverOn(['10.1.0.1/22', '10.1.0.3']);
  const got: string[] = [];
  for (let i = 0; i < 3; i++)
    got.push(bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address));
  await driver.releaseAddress(poolId, got[1] as string);
  clock.t += 10;
  await driver.releaseAddress(poolId, got[0] as string);
  assert.equal(bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address), got[1]);
  assert.equal(bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address), got[0]);
  await assert.rejects(
    driver.requestAddress({ poolId, address: '', kind: 'container' }),
    (e) => e instanceof FlatnetError && e.kind === 'exhausted',
  );
});

test('--ip pins a cooling address at once; cooldown 0 turns cooling off', async () => {
  const { driver, poolId, admin } = await driverOn(['10.1.0.1/22', '10.1.0.9']);
  const a = bare((await driver.requestAddress({ poolId, address: '', kind: 'container' })).address);
  await driver.releaseAddress(poolId, a);
  assert.equal(bare((await driver.requestAddress({ poolId, address: a, kind: 'container' })).address), a);
  assert.deepEqual(await admin.listReleased(), []);
  const off = await driverOn(['10.1.0.1/22', '10.1.0.9'], 'h1', { cooldownSec: 0, stickySec: 0 });
  const x = bare((await off.driver.requestAddress({ poolId: off.poolId, address: '', kind: 'container' })).address);
  await off.driver.releaseAddress(off.poolId, x);
  assert.equal(
    bare((await off.driver.requestAddress({ poolId: off.poolId, address: '', kind: 'container' })).address),
    x,
  );
});

test('sticky: the name gets its address back, from another host too; other names do not while it is parked', async () => {
  const { stores, driver, poolId, admin } = await driverOn(['10.1.0.1/22', '10.1.0.20']);
  const other = new IpamDriverService(stores, 'h2', silentLogger(), { cooling: opts });
  const a = bare(
    (await driver.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'web' })).address,
  );
  await driver.releaseAddress(poolId, a);
  clock.t += 3600;
  assert.deepEqual(
    (await admin.listReleased()).map((r) => [r.address, r.kind, r.endpointName]),
    [[a, 'parked', 'web']],
  );
  const someone = bare(
    (await other.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'db' })).address,
  );
  assert.notEqual(someone, a, 'parked for web, past its cooldown');
  const back = bare(
    (await other.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'web' })).address,
  );
  assert.equal(back, a, 'web gets it back on another host');
  const held = (await admin.listAssignments()).find((x) => x.address === a);
  assert.deepEqual([held?.hostId, held?.endpointName], ['h2', 'web']);
  const twin = bare(
    (await driver.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'web' })).address,
  );
  assert.ok(twin !== a && twin !== someone, 'a second container named web gets a fresh one');
});

test('sticky decision: holds, gone, give-back', () => {
  const assignment = { hostId: 'h1', since: 'x', poolId: 'p', endpointName: 'web' };
  const entry = { releasedAt: 0, parked: true };
  assert.equal(
    stickyReuse('web', { assigned: { assignment }, released: undefined, entry: undefined }, 0, policy),
    'holds',
  );
  assert.equal(
    stickyReuse('web', { assigned: undefined, released: { ...assignment, releasedAt: 'x' }, entry }, 0, policy),
    'give-back',
  );
  assert.equal(
    stickyReuse('api', { assigned: undefined, released: { ...assignment, releasedAt: 'x' }, entry }, 0, policy),
    'gone',
  );
  assert.equal(
    stickyReuse(
      'web',
      { assigned: undefined, released: { ...assignment, releasedAt: 'x' }, entry: undefined },
      0,
      policy,
    ),
    'gone',
    'reclaimed',
  );
  assert.equal(
    stickyReuse('web', { assigned: undefined, released: { ...assignment, releasedAt: 'x' }, entry }, 0, {
      cooldownSec: 1,
      stickySec: 0,
    }),
    'gone',
  );
});

test('owner records: endpoint then container fill in, idempotent; another host or endpoint is left alone', async () => {
  const { stores, driver, poolId, admin } = await driverOn(['10.1.0.1/22', '10.1.0.9']);
  const cidr = (await driver.requestAddress({ poolId, address: '', kind: 'container' })).address;
  const owners = new OwnerService(stores.pools, stores.addresses, 'h1');
  assert.equal(await owners.record(cidr, { endpointId: 'e1', networkId: 'n1' }), 'written');
  assert.equal(await owners.record(cidr, { endpointId: 'e1', networkId: 'n1' }), 'unchanged');
  stores.injectConflicts(1);
  assert.equal(
    await owners.record(cidr, { endpointId: 'e1', containerId: 'c1', containerName: '/web' }),
    'written',
    'a conflict is retried',
  );
  assert.equal(await owners.record(cidr, { endpointId: 'e2', containerName: 'x' }), 'unchanged', 'another endpoint');
  assert.equal(
    await new OwnerService(stores.pools, stores.addresses, 'h2').record(cidr, { endpointId: 'e1', containerName: 'x' }),
    'unchanged',
  );
  assert.equal(await owners.record('192.168.9.9', { endpointId: 'e1' }), 'no-pool');
  const [held] = await admin.listAssignments();
  assert.deepEqual(
    [held?.endpointId, held?.networkId, held?.containerId, held?.containerName],
    ['e1', 'n1', 'c1', 'web'],
  );
  assert.equal(withOwner('unreadable', 'h1', { endpointId: 'e' }), undefined);
  await driver.releaseAddress(poolId, bare(cidr));
  const [rel] = await admin.listReleased();
  assert.deepEqual([rel?.containerName, rel?.endpointId], ['web', 'e1'], 'the released record keeps the last holder');
});
