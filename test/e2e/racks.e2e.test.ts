import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type Engine,
  IMAGE,
  LAN,
  type Lab,
  labLeftovers,
  type LabHost,
  SEGMENT2,
  startLab,
} from '../../src/lab/lab.js';
import { missing } from '../harness/requirements.js';
import { containerAddress, etcdAssignments } from './etcd-records.js';
import { labEngines } from './engines.js';
import { withLabLogs } from './lab-diagnostics.js';

// Issue 11 item 4: racks with their own subnets. h1 on LAN 10.99.0.0/16, h2 on 10.98.0.0/16, the lab's router
// namespace between them (no uplink); one etcd on LAN's router address; on each host the same network name made
// by `flatnet create-network` without --subnet, so each takes its own segment's pool and router.
const skip = missing('root', 'docker', 'etcd', 'iproute2', 'iptables');
const NETWORK = 'lan';
/** Per engine (issue bound: at most 2 minutes): a lab of two hosts and one etcd member. */
const BUDGET_MS = 120_000;
/** Answers an HTTP GET with the source address the container saw (busybox httpd's CGI REMOTE_ADDR). */
const PEER_LISTENER = [
  'mkdir -p /www/cgi-bin',
  `printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho "$REMOTE_ADDR"\\n' > /www/cgi-bin/peer`,
  'chmod +x /www/cgi-bin/peer',
  // IPv4 only: on a dual-stack socket the peer would read as ::ffff:a.b.c.d
  'httpd -p 0.0.0.0:8080 -h /www',
].join(' && ');

for (const { engine, skip: engineSkip } of labEngines()) {
  describe(`racks with their own subnets on ${engine.name}`, { timeout: BUDGET_MS }, () =>
    suite(engine, skip || engineSkip),
  );
}

function suite(engine: Engine, skipped: string | false): void {
  let lab: Lab;
  let h1: LabHost;
  let h2: LabHost;
  const addressOf = new Map<string, string>();
  let started = 0;

  before(async () => {
    if (skipped) return;
    started = Date.now();
    lab = await startLab({ hosts: 2, segments: [0, 1], etcdMembers: 1, engine, name: `racks e2e ${engine.name}` });
    [h1, h2] = lab.hosts as [LabHost, LabHost];
    console.log(`# ${engine.name}: lab of 2 segments up in ${Date.now() - started} ms`);
  });

  after(async () => {
    if (!lab) return;
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
    console.log(`# ${engine.name}: racks file ${Date.now() - started} ms in all`);
  });

  const createNetwork = (h: LabHost): Promise<string> =>
    h.flatnet(['create-network', '--name', NETWORK, '--parent', 'eth0', '--docker-host', `unix://${h.dockerSocket}`]);

  async function ping(h: LabHost, container: string, target: string): Promise<number> {
    const out = await h.docker(['exec', container, 'ping', '-c', '3', '-w', '6', target]);
    assert.match(out, /3 packets received/, `${container} must reach ${target}:\n${out}`);
    return Number(/min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? NaN);
  }

  /** The source address `to` sees when `from` connects to it. */
  async function seenSource(fromHost: LabHost, from: string, toAddress: string): Promise<string> {
    // nc, not wget: the static busybox's wget crashes in the lab's image.
    const request = `printf 'GET /cgi-bin/peer HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${toAddress} 8080`;
    const out = await fromHost.docker(['exec', from, 'sh', '-c', request]);
    return out.trim().split(/\r?\n/).pop() ?? '';
  }

  test(
    `${engine.name}: create-network without --subnet takes each host's own segment, pool and router`,
    { skip: skipped },
    async () => {
      await withLabLogs(lab, async () => {
        assert.equal(h1.lanAddress, '10.99.0.11');
        assert.equal(h2.lanAddress, '10.98.0.12');
        // One pool per segment, each made from a host of that segment; only LAN's names its router.
        await h1.flatnet(['ip-range', 'add', '--ip-start', '10.99.128.1/16', '--ip-end', '10.99.143.254/16']);
        await Promise.all([
          h1.flatnet([
            'host-range',
            'add',
            '--ip-start',
            '10.99.0.1/16',
            '--ip-end',
            '10.99.0.254/16',
            '--gateway',
            LAN.gateway,
          ]),
          (async () => {
            // Before its segment has a pool, h2 refuses: its NIC is in no pool.
            await assert.rejects(createNetwork(h2), (err: Error) => {
              assert.match(
                err.message,
                /exited 2: flatnet: no flatnet pool is eth0's subnet 10\.98\.0\.0\/16 \(pools: 10\.99\.0\.0\/16\); add this segment's range with `flatnet ip-range add`, or give --subnet$/,
              );
              return true;
            });
            await h2.flatnet(['ip-range', 'add', '--ip-start', '10.98.128.1/16', '--ip-end', '10.98.143.254/16']);
          })(),
        ]);
        console.log(`# ${engine.name}: two pools added, one refusal seen, ${Date.now() - started} ms since the start`);

        const t0 = Date.now();
        const [out1, out2] = await Promise.all([createNetwork(h1), createNetwork(h2)]);
        console.log(`# ${engine.name}: create-network on both hosts (concurrently) ${Date.now() - t0} ms`);
        assert.match(
          out1,
          /^created network lan \(driver flatnet, subnet 10\.99\.0\.0\/16 from eth0's 10\.99\.0\.11\/16, gateway 10\.99\.0\.1\)$/m,
        );
        // No pool gateway for SEGMENT2: the gateway is h2's default route through eth0.
        assert.match(
          out2,
          /^created network lan \(driver flatnet, subnet 10\.98\.0\.0\/16 from eth0's 10\.98\.0\.12\/16, gateway 10\.98\.0\.1\)$/m,
        );
        await Promise.all(
          (
            [
              [h1, LAN.subnet, LAN.gateway],
              [h2, SEGMENT2.subnet, SEGMENT2.gateway],
            ] as const
          ).map(async ([h, subnet, gateway]) => {
            const ipam = JSON.parse(
              await h.docker(['network', 'inspect', NETWORK, '--format', '{{json .IPAM.Config}}']),
            ) as { Subnet: string; Gateway: string }[];
            assert.deepEqual(
              ipam.map((c) => [c.Subnet, c.Gateway]),
              [[subnet, gateway]],
              `${h.name}'s ${NETWORK}`,
            );
            // eth0 is now a port of br0, which holds the address: a second run reads it there and changes nothing.
            assert.match(await createNetwork(h), /already exists .*nothing to do/);
          }),
        );
      });
    },
  );

  test(
    `${engine.name}: containers of the two segments reach each other with their own addresses through the router, no NAT`,
    { skip: skipped },
    async () => {
      await withLabLogs(lab, async () => {
        await Promise.all([
          h1.docker(['run', '-d', '--name', 'a1', '--net', NETWORK, IMAGE, 'sleep', '600']),
          h2.docker(['run', '-d', '--name', 'c1', '--net', NETWORK, IMAGE, 'sleep', '600']),
        ]);
        const a1 = await containerAddress(h1, 'a1', NETWORK);
        const c1 = await containerAddress(h2, 'c1', NETWORK);
        addressOf.set('a1', a1).set('c1', c1);
        assert.match(a1, /^10\.99\.(12[89]|13\d|14[0-3])\.\d+$/, `a1 ${a1} comes from LAN's range`);
        assert.match(c1, /^10\.98\.(12[89]|13\d|14[0-3])\.\d+$/, `c1 ${c1} comes from SEGMENT2's range`);
        const route = (await h2.docker(['exec', 'c1', 'ip', 'route', 'show', 'default'])).trim();
        assert.match(route, /^default via 10\.98\.0\.1 /, `c1's gateway is its own segment's router: ${route}`);

        const rttAC = await ping(h1, 'a1', c1);
        const rttCA = await ping(h2, 'c1', a1);
        console.log(`# ${engine.name}: ping across the router a1->c1 avg ${rttAC} ms, c1->a1 avg ${rttCA} ms`);
        // Each side sees the other's own address as the source: nothing between them rewrites it.
        await Promise.all([
          h1.docker(['exec', 'a1', 'sh', '-c', PEER_LISTENER]),
          h2.docker(['exec', 'c1', 'sh', '-c', PEER_LISTENER]),
        ]);
        assert.equal(await seenSource(h1, 'a1', c1), a1, "c1 sees a1's own address");
        assert.equal(await seenSource(h2, 'c1', a1), c1, "a1 sees c1's own address");
        // And the router forwarded them: the packets crossed between its two segment bridges.
        const neigh = await lab.lanExec('ip', ['neigh', 'show']);
        assert.match(
          neigh,
          new RegExp(`^${a1.replace(/\./g, '\\.')} dev lan0 `, 'm'),
          `the router reached a1 on LAN:\n${neigh}`,
        );
        assert.match(
          neigh,
          new RegExp(`^${c1.replace(/\./g, '\\.')} dev lan1 `, 'm'),
          `the router reached c1 on SEGMENT2:\n${neigh}`,
        );

        // etcd holds each address under its own segment's pool, held by its host.
        const onLan = await etcdAssignments(lab, LAN.subnet);
        const onSeg2 = await etcdAssignments(lab, SEGMENT2.subnet);
        assert.equal(onLan.get(a1), 'h1');
        assert.equal(onSeg2.get(c1), 'h2');
        assert.equal(onLan.has(c1) || onSeg2.has(a1), false, 'no address is recorded under the other pool');
      });
    },
  );

  test(`${engine.name}: docker rm and network rm free both pools' addresses`, { skip: skipped }, async () => {
    await withLabLogs(lab, async () => {
      await Promise.all([h1.docker(['rm', '-f', 'a1']), h2.docker(['rm', '-f', 'c1'])]);
      await Promise.all([h1.docker(['network', 'rm', NETWORK]), h2.docker(['network', 'rm', NETWORK])]);
      const left = [...(await etcdAssignments(lab)).keys()];
      for (const a of addressOf.values()) assert.ok(!left.includes(a), `${a} must be released`);
    });
  });
}
