import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Engine, IMAGE, LAN, type Lab, labLeftovers, type LabHost, startLab } from '../../src/lab/lab.js';
import { missing } from '../harness/requirements.js';
import { withLabLogs } from './lab-diagnostics.js';
import { waitFor } from '../../src/lab/processes.js';
import { containerAddress, containerMac, etcdAssignments } from './etcd-records.js';
import { labEngines } from './engines.js';
import { flatNetworkCreate } from '../../src/lab/lab.js';
import { listenForDns } from './lab-dns.js';

// Issue #3: one flat LAN across hosts. Three hosts, three etcd members; h3 has iptables FORWARD policy DROP.
const skip = missing('root', 'docker', 'etcd', 'iproute2', 'iptables');
const NETWORK = 'lan';
const CREATE = flatNetworkCreate(NETWORK);
/** Two containers on h1 and h2, one on h3: enough for same-host and cross-host paths. */
const PLACEMENT: [string, number][] = [
  ['a1', 0],
  ['a2', 0],
  ['b1', 1],
  ['b2', 1],
  ['c1', 2],
];

for (const { engine, skip: engineSkip } of labEngines())
  describe(`flat LAN on ${engine.name}`, () => suite(engine, engineSkip));

function suite(engine: Engine, engineSkip: string | false): void {
  let lab: Lab;
  const addressOf = new Map<string, string>();
  const hostOf = (name: string): LabHost => lab.hosts[PLACEMENT.find(([n]) => n === name)![1]]!;

  before(async () => {
    if (skip || engineSkip) return;
    lab = await startLab({
      hosts: 3,
      name: `flat-lan e2e ${engine.name}`,
      forwardPolicyDrop: true,
      etcdMembers: 3,
      engine,
    });
  });

  after(async () => {
    if (!lab) return;
    await lab.stop();
    assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
  });

  /** The host-side veths flatnet made on a host (fn* on the host, fc* before it moves into a container). */
  /** flatnet removes veths just after Leave returns (off Docker's path): allow it a moment, then insist. */
  async function settledVeths(host: LabHost, expected: number): Promise<number> {
    try {
      return await waitFor(
        `${expected} flatnet veths on ${host.name}`,
        async () => {
          const n = (await flatnetVeths(host)).length;
          return n === expected ? n : undefined;
        },
        5000,
        100,
      );
    } catch {
      return (await flatnetVeths(host)).length;
    }
  }

  async function flatnetVeths(host: LabHost): Promise<string[]> {
    const out = await host.exec('ip', ['-o', 'link', 'show']);
    return out
      .split('\n')
      .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '')
      .filter((n) => /^f[nc]/.test(n));
  }

  async function ping(from: { container: string; host: LabHost } | 'lan', target: string): Promise<void> {
    const args = ['ping', '-c', '1', '-w', '3', target];
    const out =
      from === 'lan' ? await lab.lanExec('busybox', args) : await from.host.docker(['exec', from.container, ...args]);
    assert.match(
      out,
      /1 packets received/,
      `${from === 'lan' ? 'the LAN router' : from.container} must reach ${target}`,
    );
  }

  /** The host keeps its LAN address (on br0 once flatnet took eth0 over) and answers on it. */
  async function assertHostOnLan(host: LabHost): Promise<void> {
    const addrs = await host.exec('ip', ['-o', '-4', 'addr', 'show']);
    const holders = addrs.split('\n').filter((l) => l.includes(` ${host.lanAddress}/`));
    assert.equal(holders.length, 1, `${host.name} must hold ${host.lanAddress} exactly once:\n${addrs}`);
    await ping('lan', host.lanAddress);
  }

  test(
    `${engine.name}: the same docker network create on every host takes eth0 into br0 and keeps the hosts reachable`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const h3Forward = await lab.hosts[2]!.exec('iptables', ['-w', '-S', 'FORWARD']);
        assert.match(h3Forward, /^-P FORWARD DROP$/m, 'h3 must keep FORWARD policy DROP: the test relies on it');
        await Promise.all(lab.hosts.map((h) => h.docker(CREATE)));
        for (const h of lab.hosts) {
          const br0 = await h.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'br0']);
          assert.ok(br0.includes(` ${h.lanAddress}/16`), `${h.name}: the LAN address must be on br0:\n${br0}`);
          const eth0 = await h.exec('ip', ['-o', 'link', 'show', 'dev', 'eth0']);
          assert.match(eth0, /master br0/, `${h.name}: eth0 must be a port of br0`);
          await assertHostOnLan(h);
          const nets = await h.docker(['network', 'ls', '--filter', `name=^${NETWORK}$`, '--format', '{{.Driver}}']);
          assert.equal(nets.trim(), 'flatnet');
        }
      });
    },
  );

  test(
    `${engine.name}: containers on different hosts get unique LAN addresses, recorded in etcd, and reach each other, the hosts and the gateway`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        await Promise.all(
          lab.hosts.map(async (h, i) => {
            for (const [name, at] of PLACEMENT) {
              if (at === i) await h.docker(['run', '-d', '--name', name, '--net', NETWORK, IMAGE, 'sleep', '600']);
            }
          }),
        );
        for (const [name] of PLACEMENT) addressOf.set(name, await containerAddress(hostOf(name), name, NETWORK));
        const all = [...addressOf.values()];
        assert.equal(new Set(all).size, all.length, `addresses must be unique across hosts: ${all.join(', ')}`);
        for (const a of all)
          assert.match(a, /^10\.99\.(12[89]|13\d|14[0-3])\.\d+$/, `${a} must be inside ${LAN.containerRange}`);

        const records = await etcdAssignments(lab);
        for (const [name, a] of addressOf) {
          assert.equal(
            records.get(a),
            hostOf(name).name,
            `etcd must record ${a} (${name}) as held by ${hostOf(name).name}`,
          );
        }
        const containerRecords = [...records.keys()].filter((a) => a.startsWith('10.99.1') && a !== LAN.gateway).sort();
        assert.deepEqual(containerRecords, [...all].sort(), "etcd holds exactly the running containers' addresses");

        for (const [name] of PLACEMENT) {
          const from = { container: name, host: hostOf(name) };
          for (const [other] of PLACEMENT) if (other !== name) await ping(from, addressOf.get(other)!);
          for (const h of lab.hosts) await ping(from, h.lanAddress);
          await ping(from, LAN.gateway);
          await ping('lan', addressOf.get(name)!);
        }
        for (const h of lab.hosts) await assertHostOnLan(h);
      });
    },
  );

  test(
    `${engine.name}: --mac-address gives the container that MAC on the LAN, across hosts`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const h2 = lab.hosts[1]!;
        const mac = '02:42:0a:63:fe:01';
        await h2.docker(['run', '-d', '--name', 'm1', '--mac-address', mac, '--net', NETWORK, IMAGE, 'sleep', '600']);
        try {
          const address = await containerAddress(h2, 'm1', NETWORK);
          assert.equal(await containerMac(h2, 'm1', NETWORK), mac, 'docker inspect shows the asked MAC');
          assert.equal(
            (await h2.docker(['exec', 'm1', 'cat', '/sys/class/net/eth0/address'])).trim(),
            mac,
            "the container's eth0 has it",
          );
          await ping({ container: 'a1', host: lab.hosts[0]! }, address);
          await ping('lan', address);
          const neigh = await lab.lanExec('ip', ['neigh', 'show', address]);
          assert.match(neigh, new RegExp(`lladdr ${mac}`), `the LAN learned the asked MAC for ${address}: ${neigh}`);
        } finally {
          await h2.docker(['rm', '-f', 'm1']);
        }
      });
    },
  );

  // Docker >= 28 announces the address itself (libnetwork osl advertiseAddrs); on 20.10 flatnet's own arping does.
  test(
    `${engine.name}: a new container is announced on the LAN (gratuitous ARP) before anyone talks to it`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const h3 = lab.hosts[2]!;
        // The LAN router records announced neighbours only with arp_accept (its own namespace: the lab's to change).
        await lab.lanExec('sysctl', ['-qw', 'net.ipv4.conf.lan0.arp_accept=1']);
        await lab.lanExec('ip', ['neigh', 'flush', 'dev', 'lan0']);
        await h3.docker(['run', '-d', '--name', 'g1', '--net', NETWORK, IMAGE, 'sleep', '600']);
        try {
          const address = await containerAddress(h3, 'g1', NETWORK);
          const mac = await containerMac(h3, 'g1', NETWORK);
          const neigh = await waitFor(
            `the LAN router learning ${address} unasked`,
            async () => {
              const out = await lab.lanExec('ip', ['neigh', 'show', address]);
              return out.includes(`lladdr ${mac}`) ? out : undefined;
            },
            10_000,
            200,
          ).catch(async () => lab.lanExec('ip', ['neigh', 'show', address]));
          assert.match(neigh, new RegExp(`lladdr ${mac}`), `${address} (${mac}) is announced: ${neigh}`);
        } finally {
          await h3.docker(['rm', '-f', 'g1']);
          await lab.lanExec('sysctl', ['-qw', 'net.ipv4.conf.lan0.arp_accept=0']);
        }
      });
    },
  );

  test(
    `${engine.name}: a container's lookup of an outside name goes to the lab's DNS address, nowhere else`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const dns = await listenForDns(lab, LAN.gateway);
        try {
          const name = `flatnet-probe-${lab.id}.example`;
          // REFUSED by the lab's responder: the lookup fails, and must have been asked inside the lab.
          await assert.rejects(lab.hosts[0]!.docker(['exec', 'a1', 'nslookup', name]));
          await waitFor(
            `the query for ${name} at ${LAN.gateway}`,
            async () => (dns.queries().includes(name) ? true : undefined),
            5000,
            100,
          );
        } finally {
          await dns.stop();
        }
      });
    },
  );

  test(
    `${engine.name}: stop/start, docker rm and docker network rm leave no veth, no record and no address behind`,
    { skip: skip || engineSkip },
    async () => {
      await withLabLogs(lab, async () => {
        const h1 = lab.hosts[0]!;
        assert.equal((await flatnetVeths(h1)).length, 2, 'one host-side veth per running container on h1');

        await h1.docker(['stop', '-t', '1', 'a1']);
        assert.equal(await settledVeths(h1, 1), 1, 'a stopped container keeps no veth');
        assert.ok(!(await etcdAssignments(lab)).has(addressOf.get('a1')!), 'a stopped container holds no address');
        await assertHostOnLan(h1);

        await h1.docker(['start', 'a1']);
        const restarted = await containerAddress(h1, 'a1', NETWORK);
        addressOf.set('a1', restarted);
        assert.equal((await etcdAssignments(lab)).get(restarted), 'h1');
        await ping({ container: 'a1', host: h1 }, addressOf.get('b1')!);
        await ping({ container: 'c1', host: lab.hosts[2]! }, restarted);
        assert.equal((await flatnetVeths(h1)).length, 2);

        await Promise.all(
          lab.hosts.map(async (h, i) => {
            const mine = PLACEMENT.filter(([, at]) => at === i).map(([n]) => n);
            if (mine.length > 0) await h.docker(['rm', '-f', ...mine]);
          }),
        );
        // ReleaseAddress answers before its etcd txn lands (milliseconds later).
        const records = await waitFor(
          'the released addresses gone from etcd',
          async () => {
            const r = await etcdAssignments(lab);
            return [...addressOf.values()].every((a) => !r.has(a)) ? r : undefined;
          },
          5000,
          50,
        ).catch(() => etcdAssignments(lab));
        for (const [name, a] of addressOf)
          assert.ok(!records.has(a), `${name}'s address ${a} must be released by docker rm`);
        for (const h of lab.hosts) assert.equal(await settledVeths(h, 0), 0, `${h.name} keeps no flatnet veth`);

        await Promise.all(lab.hosts.map((h) => h.docker(['network', 'rm', NETWORK])));
        const left = [...(await etcdAssignments(lab)).keys()].filter((a) => a !== LAN.gateway);
        assert.deepEqual(left, [], 'no container address stays recorded after network rm');
        for (const h of lab.hosts) {
          assert.equal(await settledVeths(h, 0), 0);
          await assertHostOnLan(h);
        }
      });
    },
  );
}
