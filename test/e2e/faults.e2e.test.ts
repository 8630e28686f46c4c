import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Engine, IMAGE, LAN, type Lab, labLeftovers, type LabHost, startLab } from '../../src/lab/lab.js';
import { signal, sleep } from '../../src/lab/proc-tools.js';
import { waitFor } from '../../src/lab/processes.js';
import { releaseJournalPath } from '../../src/agents/ipam-healing.js';
import { postPlugin } from '../../src/util/plugin-client.js';
import { missing } from '../harness/requirements.js';
import { labEngines } from './engines.js';
import { flatNetworkCreate } from '../../src/lab/lab.js';
import { etcdHeldBy, etcdLeaderIndex, etcdPoolClaims } from './etcd-records.js';
import { withLabLogs } from './lab-diagnostics.js';

/*
 * Issue 9, item 8: Docker-level faults on real dockerd hosts with a real 3-member etcd. One lab per engine (two
 * hosts) shared by every case. After each fault: no address held twice, and etcd's set of addresses a host holds
 * equals its running containers' addresses once healed, without an operator (the plugins run with a 5 s reconcile
 * interval and a 10 s grace instead of 60 s / 120 s, so that healing fits the test; nothing calls
 * `flatnet ip reconcile`). Measured figures are printed as `# ...` lines. The leader kill runs last: it leaves
 * two members.
 */
const skip = missing('root', 'docker', 'etcd', 'iproute2', 'iptables');
const NETWORK = 'lan';
const CREATE = flatNetworkCreate(NETWORK);
const POOL_ID = `${LAN.subnet}|${LAN.containerRange}`;
const RECONCILE_INTERVAL_MS = 5000;
const RECONCILE_GRACE_MS = 10_000;
/** The issue's bound for healing without an operator. */
const HEAL_BOUND_MS = 120_000;

const secs = (ms: number): string => (ms / 1000).toFixed(1);
const firstLine = (err: unknown): string =>
  ((err as Error).message.split('\n').find((l) => /Error|error|Err/.test(l)) ?? (err as Error).message)
    .trim()
    .slice(0, 240);

for (const { engine, skip: engineSkip } of labEngines())
  describe(`faults on ${engine.name}`, () => suite(engine, engineSkip));

function suite(engine: Engine, engineSkip: string | false): void {
  let lab: Lab;
  const opts = { skip: skip || engineSkip };

  before(async () => {
    if (skip || engineSkip) return;
    lab = await startLab({
      hosts: 2,
      name: `faults e2e ${engine.name}`,
      etcdMembers: 3,
      engine,
      pluginEnv: {
        FLATNET_RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS),
        FLATNET_RECONCILE_GRACE_MS: String(RECONCILE_GRACE_MS),
      },
    });
  });

  after(async () => {
    if (!lab) return;
    thawEtcd(); // a case that failed mid-freeze must not leave teardown waiting on etcd
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
  });

  const h1 = (): LabHost => lab.hosts[0]!;
  const h2 = (): LabHost => lab.hosts[1]!;
  const freezeEtcd = (): void => lab.etcdMembers.forEach((m) => signal(m.pid, 'SIGSTOP'));
  function thawEtcd(): void {
    lab?.etcdMembers.forEach((m) => signal(m.pid, 'SIGCONT'));
  }

  /** Running containers of a host with their address on the flatnet network. */
  async function running(host: LabHost): Promise<Map<string, string>> {
    const ids = (await host.docker(['ps', '-q'])).split('\n').filter((l) => l !== '');
    if (ids.length === 0) return new Map();
    const out = await host.docker([
      'inspect',
      '--format',
      `{{.Name}} {{with index .NetworkSettings.Networks "${NETWORK}"}}{{.IPAddress}}{{end}}`,
      ...ids,
    ]);
    const map = new Map<string, string>();
    for (const line of out.split('\n').filter((l) => l.trim() !== '')) {
      const [name = '', address = ''] = line.trim().split(' ');
      map.set(name.replace(/^\//, ''), address);
    }
    return map;
  }

  /** No address is held twice: among every host's running containers. */
  async function assertDistinct(what: string): Promise<string[]> {
    const all = (await Promise.all(lab.hosts.map(async (h) => [...(await running(h)).values()]))).flat();
    for (const a of all)
      assert.match(
        a,
        /^10\.99\.(12[89]|13\d|14[0-3])\.\d+$/,
        `${what}: every running container has an address of the range (got "${a}")`,
      );
    assert.equal(new Set(all).size, all.length, `${what}: no address held twice: ${all.join(', ')}`);
    return all;
  }

  /**
   * Waits until etcd's held set for the host equals its running containers' addresses. Fails with both sets when
   * that does not happen within the issue's bound from `since`. Says how long it took from `since`, or that the
   * sets were equal at the first look (nothing to heal).
   */
  async function healed(host: LabHost, since: number): Promise<string> {
    const sets = async (): Promise<{ held: string[]; run: string[] }> => {
      const held = await etcdHeldBy(lab, host.name);
      const run = [...(await running(host)).values()].sort();
      return { held, run };
    };
    let first = true;
    let equalAtOnce = false;
    try {
      await waitFor(
        `etcd's held set of ${host.name} to equal its running containers`,
        async () => {
          const { held, run } = await sets();
          const equal = held.join() === run.join();
          if (first && !equal) {
            console.log(
              `# ${engine.name} ${host.name} before healing: held by nothing running [${held.filter((a) => !run.includes(a)).join(' ')}], running but not held [${run.filter((a) => !held.includes(a)).join(' ')}]`,
            );
          }
          if (first) equalAtOnce = equal;
          first = false;
          return equal ? true : undefined;
        },
        Math.max(1000, since + HEAL_BOUND_MS - Date.now()),
        500,
      );
    } catch {
      const { held, run } = await sets();
      assert.deepEqual(
        held,
        run,
        `${host.name}: etcd's held set must equal the running containers' addresses within ${HEAL_BOUND_MS / 1000} s`,
      );
    }
    return equalAtOnce ? 'at the first look' : `after ${secs(Date.now() - since)} s`;
  }

  /** Starts `names` on a host at once; resolves with the failures (name → error line). */
  async function burst(host: LabHost, names: string[], extra: string[] = []): Promise<Map<string, string>> {
    const results = await Promise.allSettled(
      names.map((n) => host.docker(['run', '-d', '--name', n, ...extra, '--net', NETWORK, IMAGE, 'sleep', '600'])),
    );
    const failed = new Map<string, string>();
    results.forEach((r, i) => {
      if (r.status === 'rejected') failed.set(names[i]!, firstLine(r.reason));
    });
    return failed;
  }

  /** Removes containers that failed to start (Created, no endpoint): they hold nothing and would only clutter. */
  async function removeCreated(host: LabHost): Promise<void> {
    const ids = (await host.docker(['ps', '-aq', '--filter', 'status=created'])).split('\n').filter((l) => l !== '');
    if (ids.length > 0) await host.docker(['rm', '-f', ...ids]);
  }

  const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  test(`${engine.name}: the network on both hosts`, opts, async () => {
    await withLabLogs(lab, async () => {
      await Promise.all(lab.hosts.map((h) => h.docker(CREATE)));
    });
  });

  test(
    `${engine.name}: plugin SIGKILL during a burst of docker run, restarted 1 s later: no address twice, etcd = running after the automatic reconcile`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const host = h1();
        const runs = burst(host, names('k', 12));
        await sleep(1200);
        const killedAt = Date.now();
        const pid = await host.killPlugin();
        await sleep(1000);
        const startAt = Date.now();
        await host.startPlugin();
        const restartedAt = Date.now();
        const failed = await runs;
        const burstDone = Date.now();
        const started = 12 - failed.size;
        const runningNow = new Set((await running(host)).values());
        const orphans = (await etcdHeldBy(lab, host.name)).filter((a) => !runningNow.has(a)).length;
        await assertDistinct('after the plugin kill');
        const heal = await healed(host, burstDone);
        console.log(
          `# ${engine.name} plugin SIGKILL (pid ${pid}) 1.2 s into a burst of 12 docker run; started again 1 s later, answering after ${secs(restartedAt - startAt)} s; burst done ${secs(burstDone - killedAt)} s after the kill: ${started} started, ${failed.size} failed${failed.size ? ` (${[...new Set(failed.values())].join(' | ')})` : ''}`,
        );
        console.log(
          `# ${engine.name} plugin SIGKILL: ${orphans} orphan(s) in etcd when the burst ended; etcd = running ${heal} (from the burst's end; reconcile every ${RECONCILE_INTERVAL_MS / 1000} s, grace ${RECONCILE_GRACE_MS / 1000} s)`,
        );
        assert.ok(started > 0, 'some containers of the burst started');
        await removeCreated(host);
        await assertDistinct('after healing');
      });
    },
  );

  test(
    `${engine.name}: a container removed (docker rm -f) while the plugin is dead: its address is freed after the plugin restarts`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const host = h1();
        assert.deepEqual([...(await burst(host, ['v0', 'v1']))], [], 'both containers start');
        const victim = (await running(host)).get('v0')!;
        await host.killPlugin();
        const rmAt = Date.now();
        // dockerd retries each plugin call for 30 s, then removes the container anyway.
        await host.docker(['rm', '-f', 'v0']);
        const rmMs = Date.now() - rmAt;
        assert.ok(
          (await etcdHeldBy(lab, host.name)).includes(victim),
          "the removed container's address is still held while the plugin is dead",
        );
        await host.startPlugin();
        const restartedAt = Date.now();
        const heal = await healed(host, restartedAt);
        assert.ok(!(await etcdHeldBy(lab, host.name)).includes(victim), `${victim} is free again`);
        console.log(
          `# ${engine.name} docker rm -f with the plugin dead returned after ${secs(rmMs)} s; its address ${victim} still held then; freed, etcd = running ${heal} (from the plugin's restart)`,
        );
        await assertDistinct('after healing');
      });
    },
  );

  test(
    `${engine.name}: etcd frozen (SIGSTOP every member): plugin call and docker run fail naming etcd within 6 s / 10 s; a container removed meanwhile is freed after SIGCONT`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const host = h1();
        assert.deepEqual([...(await burst(host, ['f0']))], [], 'the container starts');
        const victim = (await running(host)).get('f0')!;
        freezeEtcd();
        const frozenAt = Date.now();
        let thawedAt = 0;
        try {
          const rmAt = Date.now();
          await host.docker(['rm', '-f', 'f0']);
          const rmMs = Date.now() - rmAt;
          const journal = await readFile(releaseJournalPath(join(host.dir, 'state')), 'utf8').catch(() => '');
          assert.match(
            journal,
            new RegExp(`"address":\\s*"${victim.replace(/\./g, '\\.')}(/\\d+)?"`),
            `the release of ${victim} waits in the journal`,
          );

          const callAt = Date.now();
          const body = `${JSON.stringify({ PoolID: POOL_ID, Address: '', Options: {} })}\n`;
          const reply = await postPlugin(
            join(host.pluginSocketDir, 'flatnet.sock'),
            'IpamDriver.RequestAddress',
            body,
            { timeoutMs: 30_000 },
          );
          const callMs = Date.now() - callAt;
          const call = { status: reply.status, err: String((JSON.parse(reply.text) as { Err?: unknown }).Err) };
          assert.notEqual(call.status, 200, 'RequestAddress fails while etcd is frozen');
          assert.match(call.err, /etcd/i, 'the error names etcd');
          assert.ok(callMs <= 6000, `RequestAddress failed after ${callMs} ms (bound 6 s)`);

          const runAt = Date.now();
          const err = await host.docker(['run', '-d', '--name', 'f1', '--net', NETWORK, IMAGE, 'sleep', '600']).then(
            () => undefined,
            (e: unknown) => e,
          );
          const runMs = Date.now() - runAt;
          assert.ok(err !== undefined, 'docker run fails while etcd is frozen');
          assert.match((err as Error).message, /etcd/i, "docker run's error names etcd");
          assert.ok(runMs <= 10_000, `docker run failed after ${runMs} ms (bound 10 s)`);
          console.log(
            `# ${engine.name} etcd frozen: docker rm -f took ${secs(rmMs)} s; RequestAddress failed after ${secs(callMs)} s: ${call.err.slice(0, 160)}`,
          );
          console.log(`# ${engine.name} etcd frozen: docker run failed after ${secs(runMs)} s: ${firstLine(err)}`);
        } finally {
          thawEtcd();
          thawedAt = Date.now();
        }
        await removeCreated(host);
        const heal = await healed(host, thawedAt);
        assert.ok(!(await etcdHeldBy(lab, host.name)).includes(victim), `${victim} is free again`);
        console.log(
          `# ${engine.name} etcd frozen for ${secs(thawedAt - frozenAt)} s: the removed container's address ${victim} journaled, then freed: etcd = running ${heal} (from SIGCONT)`,
        );
        assert.deepEqual([...(await burst(host, ['f2']))], [], 'docker run works again once etcd is back');
        await assertDistinct('after etcd came back');
      });
    },
  );

  test(
    `${engine.name}: docker network rm during an etcd outage, then etcd back: docker network create of the same pool on that host works`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const host = h2();
        assert.equal((await running(host)).size, 0, 'h2 has no container on the network');
        freezeEtcd();
        let thawedAt = 0;
        let rmMs = 0;
        try {
          const rmAt = Date.now();
          await host.docker(['network', 'rm', NETWORK]);
          rmMs = Date.now() - rmAt;
        } finally {
          thawEtcd();
          thawedAt = Date.now();
        }
        await host.docker(CREATE);
        const createMs = Date.now() - thawedAt;
        assert.deepEqual([...(await burst(host, ['n0']))], [], 'a container starts on the re-created network');
        const claims = await waitFor(
          'h2 to hold one claim on the pool',
          async () => {
            const c = await etcdPoolClaims(lab, LAN.subnet);
            return c?.filter((h) => h === host.name).length === 1 ? c : undefined;
          },
          30_000,
          500,
        ).catch(async () => etcdPoolClaims(lab, LAN.subnet));
        assert.equal(
          claims?.filter((h) => h === host.name).length,
          1,
          `one claim per network of h2 (claims: ${claims?.join(', ')})`,
        );
        console.log(
          `# ${engine.name} docker network rm with etcd frozen took ${secs(rmMs)} s; network create of the same pool worked ${secs(createMs)} s after SIGCONT`,
        );
        await healed(host, Date.now());
        await host.docker(['rm', '-f', 'n0']);
        await assertDistinct('after the re-create');
      });
    },
  );

  test(
    `${engine.name}: dockerd restart with live --restart always containers: they come back with addresses, none twice, etcd = running`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const host = h2();
        const mine = names('d', 4);
        assert.deepEqual([...(await burst(host, mine, ['--restart', 'always']))], [], 'all start');
        const before = await running(host);
        const restartAt = Date.now();
        await host.restartDockerd();
        const upMs = Date.now() - restartAt;
        const back = await waitFor(
          'the --restart always containers to run again',
          async () => {
            const r = await running(host);
            return mine.every((n) => (r.get(n) ?? '') !== '') ? r : undefined;
          },
          60_000,
          250,
        );
        const backMs = Date.now() - restartAt;
        const heal = await healed(host, restartAt);
        const kept = mine.filter((n) => back.get(n) === before.get(n)).length;
        console.log(
          `# ${engine.name} dockerd restart: answering after ${secs(upMs)} s, ${mine.length} --restart always containers running with addresses after ${secs(backMs)} s (${kept} kept their address); etcd = running ${heal} (from the restart)`,
        );
        await assertDistinct('after the dockerd restart');
        await host.docker(['rm', '-f', ...mine]);
        await healed(host, Date.now());
      });
    },
  );

  test(
    `${engine.name}: etcd leader SIGKILL during bursts on two hosts: all containers start, all distinct, etcd = running`,
    opts,
    async () => {
      await withLabLogs(lab, async () => {
        const leader = await etcdLeaderIndex(lab);
        const perHost = 8;
        const runs = lab.hosts.map((h, i) => burst(h, names(`l${i}-`, perHost)));
        await sleep(1500);
        const killedAt = Date.now();
        signal(lab.etcdMembers[leader]!.pid, 'SIGKILL');
        const failures = await Promise.all(runs);
        const burstMs = Date.now() - killedAt;
        const all = await assertDistinct('after the leader kill');
        for (const h of lab.hosts) await healed(h, Date.now());
        const failed = failures.flatMap((f) => [...f.values()]);
        console.log(
          `# ${engine.name} etcd leader (${lab.etcdMembers[leader]!.name}) SIGKILL 1.5 s into bursts of ${perHost} docker run on each of 2 hosts: ${2 * perHost - failed.length} of ${2 * perHost} started, ${all.length} running distinct addresses, bursts done ${secs(burstMs)} s after the kill`,
        );
        assert.deepEqual(failed, [], 'every container starts');
      });
    },
  );
}
