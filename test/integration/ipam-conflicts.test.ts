import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { assertOk, assertOneLineError, runFlatnet } from '../harness/cli-runner.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { v4 } from '../harness/ipam-requests.js';

/** Conflict records in a real etcd: what is stored, the compare against a racing allocation, the CLI's view and clear. */
const skip = missing('etcd');
let dir = '';
const bare = (cidr: string): string => cidr.split('/')[0] as string;
const seen = { mac: '02:11:22:33:44:55', seenAt: '2026-12-01T12:00:00.000Z', seenBy: 'h1' };

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flatnet-conflicts-'));
  await writeFile(join(dir, 'none.conf'), '# empty\n');
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});
// after the hooks above, so that what they stop still has its etcd
const lab = etcdFixture(skip);

async function pool(prefix: string) {
  const stores = new EtcdStores(lab.etcd, prefix, silentLogger()).ipam;
  const admin = new IpamAdminService(stores, silentLogger());
  await admin.addIpRange({ start: '10.77.0.10/24', end: '10.77.0.29' });
  const h1 = new IpamDriverService(stores, 'h1', silentLogger());
  const h2 = new IpamDriverService(new EtcdStores(lab.etcd, prefix, silentLogger()).ipam, 'h2', silentLogger());
  const { poolId } = await h1.requestPool(v4('10.77.0.0/24'));
  await h2.requestPool(v4('10.77.0.0/24'));
  return { stores, admin, h1, h2, poolId, conflicts: new ConflictService(stores) };
}

const cli = (prefix: string, args: string[]) =>
  runFlatnet(args, {
    env: {
      PATH: process.env.PATH ?? '',
      FLATNET_ETCD_ENDPOINTS: lab.cluster.endpoints.join(','),
      FLATNET_ETCD_PREFIX: prefix,
      FLATNET_ETCD_TIMEOUT_MS: '3000',
      FLATNET_CONFIG: join(dir, 'none.conf'),
    },
  });

test(
  'a conflict is stored as an addr record held by no host with its block bit set; no host allocates it; the CLI lists and clears it',
  { skip },
  async () => {
    const prefix = `/c${Math.random().toString(36).slice(2, 8)}`;
    const { h1, h2, poolId, conflicts } = await pool(prefix);
    const [a, b] = await h1.upcoming(poolId, 2);
    assert.ok(a && b);
    assert.equal(await conflicts.record(parsePoolId(poolId), poolId, a, seen), 'recorded');
    assert.equal(await conflicts.record(parsePoolId(poolId), poolId, b, { ...seen, mac: undefined }), 'recorded');
    const stored = JSON.parse(
      (await lab.etcd.get(`${prefix}/ipam/v1/pool/10.77.0.0_24/addr/${a}`).string()) ?? 'null',
    ) as unknown;
    assert.deepEqual(stored, { hostId: '~conflict', since: seen.seenAt, poolId, conflict: seen });
    const block = await lab.etcd.get(`${prefix}/ipam/v1/pool/10.77.0.0_24/block/0`).buffer();
    const bit = Number(a.split('.')[3]);
    assert.ok(block && ((block[bit >> 3] as number) & (1 << (bit & 7))) !== 0, 'the block bit is set');

    const got: string[] = [];
    for (let i = 0; i < 9; i++)
      got.push(bare((await (i % 2 ? h2 : h1).requestAddress({ poolId, address: '', kind: 'container' })).address));
    assert.ok(!got.includes(a) && !got.includes(b), `neither host hands a conflict out: ${got.join(',')}`);

    const listed = await cli(prefix, ['ip', 'list', '--conflicts', '--json']);
    assertOk(listed);
    assert.deepEqual(
      JSON.parse(listed.stdout),
      [
        { address: a, subnet: '10.77.0.0/24', mac: seen.mac, seenAt: seen.seenAt, seenBy: 'h1' },
        { address: b, subnet: '10.77.0.0/24', seenAt: seen.seenAt, seenBy: 'h1' },
      ].sort((x, y) => x.address.localeCompare(y.address)),
    );
    const table = await cli(prefix, ['ip', 'list', '--conflicts']);
    assert.match(
      table.stdout,
      new RegExp(
        `^ADDRESS\\s+SUBNET\\s+MAC\\s+SEEN AT\\s+SEEN BY\\n(.*\\n)*${a.replace(/\./g, '\\.')}\\s+10\\.77\\.0\\.0/24\\s+02:11:22:33:44:55\\s+${seen.seenAt}\\s+h1`,
        'm',
      ),
    );
    const plain = JSON.parse((await cli(prefix, ['ip', 'list', '--json'])).stdout) as { address: string }[];
    assert.deepEqual(plain.map((x) => x.address).sort(), [...got].sort(), 'ip list shows containers only');
    const status = await cli(prefix, ['status', '--json']);
    const p = (
      JSON.parse(status.stdout) as { pools: { subnet: string; used: number; conflicts: number; free: string }[] }
    ).pools[0];
    assert.deepEqual([p?.used, p?.conflicts, p?.free], [9, 2, '9']);
    assert.match((await cli(prefix, ['status'])).stdout, /CONFLICTS/);

    assertOneLineError(
      await cli(prefix, ['ip', 'clear-conflict', got[0] as string]),
      /is not a recorded conflict \(it is held by a container\)/,
      2,
    );
    assertOneLineError(
      await cli(prefix, ['ip', 'clear-conflict', '10.77.0.200']),
      /is not a recorded conflict \(it is free\)/,
      2,
    );
    assertOneLineError(await cli(prefix, ['ip', 'clear-conflict', '10.77.0']), /address/, 2);
    assertOneLineError(await cli(prefix, ['ip', 'release', a]), /recorded conflict.*clear-conflict/, 2);
    assertOneLineError(
      await cli(prefix, ['ip', 'list', '--conflicts', '--released']),
      /one of --released, --orphans and --conflicts/,
      2,
    );
    const cleared = await cli(prefix, ['ip', 'clear-conflict', a]);
    assertOk(cleared);
    assert.match(
      cleared.stdout,
      new RegExp(`cleared the conflict on ${a.replace(/\./g, '\\.')} .*MAC 02:11:22:33:44:55`),
    );
    assert.equal(await lab.etcd.get(`${prefix}/ipam/v1/pool/10.77.0.0_24/addr/${a}`).string(), null);
    assert.equal(
      await lab.etcd.get(`${prefix}/ipam/v1/pool/10.77.0.0_24/rel/${a}`).string(),
      null,
      'freed at once: no released record',
    );
    const fresh = [];
    for (let i = 0; i < 2; i++)
      fresh.push(bare((await h1.requestAddress({ poolId, address: '', kind: 'container' })).address));
    assert.ok(fresh.includes(a), `a cleared conflict is handed out again: ${fresh.join(',')}`);
  },
);

test('a conflict racing an allocation of the same address: exactly one of them gets it', { skip }, async () => {
  const prefix = `/c${Math.random().toString(36).slice(2, 8)}`;
  const { h2, poolId, conflicts, admin } = await pool(prefix);
  for (let round = 0; round < 5; round++) {
    const [a] = await h2.upcoming(poolId, 1);
    assert.ok(a);
    const [rec, alloc] = await Promise.all([
      conflicts.record(parsePoolId(poolId), poolId, a, seen),
      h2.requestAddress({ poolId, address: '', kind: 'container' }).then((r) => bare(r.address)),
    ]);
    if (rec === 'recorded') assert.notEqual(alloc, a, 'recorded: the allocation went elsewhere');
    else assert.equal(alloc, a, `${rec}: the container got it`);
  }
  const held = (await admin.listAssignments()).map((x) => x.address);
  const conf = (await admin.listConflicts()).map((x) => x.address);
  assert.equal(held.length, 5);
  assert.deepEqual(
    held.filter((x) => conf.includes(x)),
    [],
    'no address is both',
  );
});
