import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FlatnetError } from '../../src/errors.js';
import type { ProbeResult } from '../../src/hostnet/arp-probe.js';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import {
  ConflictProber,
  type ConflictProberDeps,
  type ConflictProberOptions,
} from '../../src/agents/conflict-prober.js';
import { waitFor } from '../../src/lab/processes.js';
import { fakeClock } from '../harness/fake-clock.js';
import { poolWithRange } from '../fakes/pools.js';

/** The background probe loop over the in-memory IPAM, with a scripted arping and a hand-driven clock. */
const POOL = '10.1.0.0/22';
const bare = (cidr: string): string => cidr.split('/')[0] as string;

function capture() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function rig(
  o: {
    answering?: Set<string>;
    bridge?: string | undefined;
    probeFails?: boolean;
    range?: [string, string];
    gate?: Promise<void>;
    topUpAfter?: number;
    quietMs?: number;
    maxDeferMs?: number;
  } = {},
) {
  const { stores, admin } = await poolWithRange(...(o.range ?? ['10.1.0.1/22', '10.1.0.30']));
  const clock = { t: 1_000_000 };
  const probes: string[] = [];
  const { logger, lines } = capture();
  let prober: ConflictProber | undefined;
  const driver = new IpamDriverService(stores, 'h1', logger, { onAllocated: (p) => prober?.allocated(p) });
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: POOL,
    subPool: '',
    options: {},
    v6: false,
  });
  const conflicts = new ConflictService(stores);
  const deps: ConflictProberDeps = {
    hostId: 'h1',
    pools: async () => [poolId],
    bridgeFor: async (subnet) => (subnet === POOL ? ('bridge' in o ? o.bridge : 'br0') : undefined),
    upcoming: (id, n) => driver.upcoming(id, n),
    probe: async (ifname, address): Promise<ProbeResult> => {
      probes.push(`${ifname} ${address}`);
      await o.gate;
      if (o.probeFails) throw new FlatnetError('unavailable', 'Could not run arping to probe: spawn arping ENOENT');
      return o.answering?.has(address)
        ? { address, answered: true, mac: '02:00:00:00:00:99' }
        : { address, answered: false };
    },
    record: (id, address, seen) => conflicts.record(parsePoolId(id), id, address, seen),
    logger,
    now: () => clock.t,
  };
  prober = new ConflictProber(deps, {
    candidates: 4,
    staleMs: 60_000,
    tickMs: 3_600_000,
    topUpAfter: o.topUpAfter ?? 1,
    quietMs: o.quietMs ?? 0,
    maxDeferMs: o.maxDeferMs ?? 0,
  });
  const settle = async (): Promise<void> => {
    await prober?.round();
    await prober?.settle();
  };
  return { stores, admin, driver, poolId, prober, probes, lines, clock, settle };
}

test('the next addresses are probed from the bridge; one that answers is recorded and the next takes its place', async () => {
  const r = await rig({ answering: new Set(['10.1.0.2', '10.1.0.5']) });
  await r.settle();
  const conflicts = await r.admin.listConflicts();
  assert.deepEqual(
    conflicts.map((c) => [c.address, c.mac, c.seenBy]),
    [
      ['10.1.0.2', '02:00:00:00:00:99', 'h1'],
      ['10.1.0.5', '02:00:00:00:00:99', 'h1'],
    ],
  );
  assert.ok(
    r.probes.every((p) => p.startsWith('br0 ')),
    'probed from the bridge',
  );
  // Candidates topped up past the conflicts: 1, 3, 4, 6 free (and 2, 5 answered).
  assert.deepEqual(
    r.probes.map((p) => p.split(' ')[1]).sort(),
    ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6'].sort(),
  );
  assert.equal(r.lines.filter((l) => /address conflict: a machine outside flatnet/.test(l.msg)).length, 2);
  const got = [];
  for (let i = 0; i < 4; i++)
    got.push(bare((await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' })).address));
  assert.deepEqual(got, ['10.1.0.1', '10.1.0.3', '10.1.0.4', '10.1.0.6']);
});

test('each allocation tops the set up in the background; fresh candidates are not probed again until stale', async (t) => {
  const timers = fakeClock(t);
  const r = await rig();
  await r.settle();
  assert.equal(r.probes.length, 4);
  await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' });
  await timers.advance(20);
  await r.prober.settle();
  assert.deepEqual(
    r.probes.slice(4),
    ['br0 10.1.0.5'],
    'one new candidate after one allocation, probed without a round',
  );
  await r.settle();
  assert.equal(r.probes.length, 5, 'nothing stale yet');
  r.clock.t += 60_000;
  await r.settle();
  assert.deepEqual(
    r.probes.slice(5).sort(),
    ['br0 10.1.0.2', 'br0 10.1.0.3', 'br0 10.1.0.4', 'br0 10.1.0.5'],
    'stale ones re-probed',
  );
});

test('top-ups come in batches: nothing until topUpAfter allocations, then all the missing candidates at once', async (t) => {
  const timers = fakeClock(t);
  const r = await rig({ topUpAfter: 3 });
  await r.settle();
  assert.equal(r.probes.length, 4);
  for (let i = 0; i < 2; i++) await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' });
  await timers.advance(20);
  await r.prober.settle();
  assert.equal(r.probes.length, 4, 'two allocations: no probe yet (two candidates still probed ahead)');
  await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' });
  await timers.advance(20);
  await r.prober.settle();
  assert.deepEqual(
    r.probes.slice(4).sort(),
    ['br0 10.1.0.5', 'br0 10.1.0.6', 'br0 10.1.0.7'],
    'the third: the three missing ones together',
  );
});

test('where probing cannot run it says so once and never fails an allocation', async () => {
  const noBridge = await rig({ bridge: undefined });
  await noBridge.settle();
  await noBridge.settle();
  assert.equal(noBridge.probes.length, 0);
  assert.equal(noBridge.lines.filter((l) => /no flatnet network \(bridge\)/.test(l.msg)).length, 1, 'said once');
  assert.ok(
    (await noBridge.driver.requestAddress({ poolId: noBridge.poolId, address: '', kind: 'container' })).address,
  );

  const broken = await rig({ probeFails: true });
  await broken.settle();
  broken.clock.t += 3_600_000;
  await broken.settle();
  assert.ok(broken.probes.length >= 2, 'tried again in a later round');
  assert.equal(broken.lines.filter((l) => /arping failed/.test(l.msg)).length, 1, 'said once');
  assert.deepEqual(await broken.admin.listConflicts(), []);
  assert.ok((await broken.driver.requestAddress({ poolId: broken.poolId, address: '', kind: 'container' })).address);
});

test('an allocation never waits for a probe', async () => {
  let release: () => void = () => undefined;
  const r = await rig({ gate: new Promise<void>((res) => (release = res)) });
  await r.prober.round();
  assert.equal(r.probes.length, 4, 'four probes under way, none answered yet');
  const addr = await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' });
  assert.equal(bare(addr.address), '10.1.0.1', 'served while every probe hangs');
  release();
  await r.prober.stop();
});

/** A prober over a fresh pool whose probes all come back unanswered (and are recorded in `probes`). */
async function silentLan(
  deps: (poolId: string) => Pick<ConflictProberDeps, 'pools' | 'bridgeFor'> & Partial<ConflictProberDeps>,
  options: Partial<ConflictProberOptions>,
): Promise<{ prober: ConflictProber; probes: string[] }> {
  const { stores } = await poolWithRange('10.1.0.1/22', '10.1.0.30');
  const driver = new IpamDriverService(stores, 'h1', pino({ level: 'silent' }));
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: POOL,
    subPool: '',
    options: {},
    v6: false,
  });
  const probes: string[] = [];
  const prober = new ConflictProber(
    {
      hostId: 'h1',
      upcoming: (id, n) => driver.upcoming(id, n),
      probe: async (_i, address) => {
        probes.push(address);
        return { address, answered: false };
      },
      record: async () => 'recorded',
      logger: pino({ level: 'silent' }),
      ...deps(poolId),
    },
    { quietMs: 0, ...options },
  );
  return { prober, probes };
}

test('a network created on the host is probed at once, not at the next tick', async (t) => {
  const timers = fakeClock(t);
  const local = { networks: '' };
  const { prober, probes } = await silentLan(
    (poolId) => ({
      pools: async () => [poolId],
      bridgeFor: async () => (local.networks === '' ? undefined : 'br0'),
      localNetworks: async () => local.networks,
    }),
    { candidates: 2, tickMs: 3_600_000, watchMs: 5 },
  );
  prober.start();
  await timers.advance(30);
  assert.deepEqual(probes, [], 'no bridge yet: nothing probed');
  local.networks = 'n1:10.1.0.0/22:br0';
  await timers.advance(5);
  await prober.settle();
  assert.equal(probes.length, 2, 'probed within one watchMs');
  await prober.stop();
  assert.deepEqual(probes, ['10.1.0.1', '10.1.0.2']);
});

test('a pool whose network went and came back keeps its fresh probe results: no new burst of probes, until they are stale', async () => {
  const claimed = { yes: true };
  const clock = { t: 1_000_000 };
  const { prober, probes } = await silentLan(
    (poolId) => ({
      pools: async () => (claimed.yes ? [poolId] : []),
      bridgeFor: async () => 'br0',
      now: () => clock.t,
    }),
    { candidates: 3, staleMs: 60_000, tickMs: 3_600_000 },
  );
  const round = async (): Promise<void> => {
    await prober.round();
    await prober.settle();
  };
  await round();
  assert.equal(probes.length, 3);
  claimed.yes = false; // the host's last network on the pool went (a swarm node's tasks all left)
  clock.t += 10_000;
  await round();
  claimed.yes = true; // and came back 20 s later
  clock.t += 10_000;
  await round();
  assert.equal(probes.length, 3, 'the results of 20 s ago still hold');
  claimed.yes = false;
  await round();
  clock.t += 61_000;
  await round();
  claimed.yes = true;
  await round();
  assert.equal(probes.length, 6, 'gone longer than staleMs: probed again');
  await prober.stop();
});

test('probes wait for a pause in allocations (quietMs), and a host that never pauses gets them after maxDeferMs', async () => {
  const r = await rig({ range: ['10.1.0.1/22', '10.1.0.200'], quietMs: 500, maxDeferMs: 60_000 });
  await r.settle();
  assert.equal(r.probes.length, 4, 'the first round: nothing handed out before it, no wait');
  const probedAt: number[] = [];
  const seen = r.probes.length;
  let lastAllocation = 0;
  for (let i = 0; i < 4; i++) {
    await r.driver.requestAddress({ poolId: r.poolId, address: '', kind: 'container' });
    lastAllocation = performance.now();
    await new Promise((res) => setTimeout(res, 20));
  }
  await waitFor('the top-up after the burst', async () => (r.probes.length > seen ? true : undefined), 5000, 5);
  probedAt.push(performance.now());
  assert.ok((probedAt[0] as number) - lastAllocation >= 450, 'no probe until the burst paused');
  await r.prober.stop();

  const busy = await rig({ range: ['10.1.0.1/22', '10.1.0.200'], quietMs: 60_000, maxDeferMs: 200 });
  await busy.settle();
  const before = busy.probes.length;
  let probedWhileBusy = false;
  const until = performance.now() + 3000;
  while (performance.now() < until && !probedWhileBusy) {
    await busy.driver.requestAddress({ poolId: busy.poolId, address: '', kind: 'container' });
    await new Promise((res) => setTimeout(res, 20));
    probedWhileBusy = busy.probes.length > before;
  }
  assert.ok(probedWhileBusy, 'probed while allocations went on, once maxDeferMs had passed');
  await busy.prober.stop();
});
