import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { docker28, IMAGE, LAN, type Lab, labLeftovers, type LabHost, startLab } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { containerAddress, etcdAssignments } from './etcd-records.js';
import { labEngines } from './engines.js';
import { withLabLogs } from './lab-diagnostics.js';
import { buildPluginDir, installPlugin, removePlugin } from './managed-plugin-host.js';

// Issue 11: a swarm service on the flat LAN, the documented L2 model: a --config-only network per node, a
// swarm-scoped network made from it, the managed plugin on every node. Docker 28 only (the swarm engine of
// the lab's choice; 20.10 is not tested here).
const d28 = labEngines().find((c) => c.engine.name === 'docker28');
const skip = missing('root', 'docker', 'etcd', 'iproute2') || (d28?.skip ?? 'Docker 28 not selected (FLATNET_LAB_ENGINES)');
const PLUGIN = 'flatnet:latest';
const SERVICE = 'web';
const NETWORK = 'swlan';

let lab: Lab;
let work: string;

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'flatnet-swarm-test-'));
  // Both at once, but the lab is kept as soon as it runs, so that after() removes it even if the build failed.
  const building = buildPluginDir(work);
  building.catch(() => undefined);
  lab = await startLab({ hosts: 3, plugin: false, etcdMembers: 1, engine: docker28()!, name: 'swarm e2e' });
  const pluginDir = await building;
  await Promise.all(lab.hosts.map((h) => installPlugin(lab, h, PLUGIN, pluginDir, work)));
});

after(async () => {
  if (!lab) {
    if (work) await rm(work, { recursive: true, force: true });
    return;
  }
  const [manager] = lab.hosts;
  await manager?.docker(['service', 'rm', SERVICE]).catch(() => undefined);
  // Tasks stop asynchronously after service rm; the network can go only once they are gone.
  await Promise.all(lab.hosts.map((h) => waitFor(`${h.name} without tasks`, async () => ((await serviceTasks(h)).length === 0 ? true : undefined), 30_000, 300).catch(() => undefined)));
  await manager?.docker(['network', 'rm', NETWORK]).catch(() => undefined);
  for (const h of lab.hosts) {
    await waitFor(`${NETWORK} gone from ${h.name}`, async () => ((await h.docker(['network', 'ls', '-q', '--filter', `name=^${NETWORK}$`])).trim() === '' ? true : undefined), 20_000, 300).catch(() => undefined);
    await h.docker(['network', 'rm', 'lanconf']).catch(() => undefined);
  }
  for (const h of [...lab.hosts].reverse()) await h.docker(['swarm', 'leave', '--force']).catch(() => undefined);
  await Promise.all(lab.hosts.map((h) => removePlugin(h, PLUGIN)));
  await lab.stop();
  await rm(work, { recursive: true, force: true });
  assert.deepEqual(await labLeftovers(lab.id), [], 'the bed must leave nothing behind');
});

async function serviceTasks(host: LabHost): Promise<string[]> {
  const out = await host.docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${SERVICE}`]);
  return out.split('\n').filter((l) => l !== '');
}

/** Every running task of the service: container id, the host it runs on and its address on the swarm network. */
async function tasks(): Promise<{ id: string; host: LabHost; address: string }[]> {
  const out: { id: string; host: LabHost; address: string }[] = [];
  for (const h of lab.hosts) {
    for (const id of await serviceTasks(h)) out.push({ id, host: h, address: await containerAddress(h, id, NETWORK) });
  }
  return out;
}

async function settledTasks(count: number): Promise<{ id: string; host: LabHost; address: string }[]> {
  return waitFor(`${count} running tasks of ${SERVICE}`, async () => {
    const t = await tasks();
    return t.length === count && t.every((x) => x.address !== '') ? t : undefined;
  }, 60_000, 500);
}

/** The addresses a task's resolver (Docker's embedded DNS) gives for a name. */
async function resolve(task: { id: string; host: LabHost }, name: string): Promise<string[]> {
  const out = await task.host.docker(['exec', task.id, 'nslookup', '-type=a', name]).catch((err: Error) => err.message);
  // busybox nslookup prints the server first ("Server: 127.0.0.11", "Address: 127.0.0.11:53"), then answers.
  const answers = out.split(/Name:\s/).slice(1).join('\n');
  return [...answers.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
}

test('a dnsrr service on a swarm-scoped flatnet network: unique addresses, reach across nodes, the name resolves on every node, scale-down frees', { skip }, async () => {
  await withLabLogs(lab, async () => {
    const [manager, ...workers] = lab.hosts as [LabHost, ...LabHost[]];
    await manager.docker(['swarm', 'init', '--advertise-addr', manager.lanAddress, '--listen-addr', `${manager.lanAddress}:2377`]);
    const token = (await manager.docker(['swarm', 'join-token', '-q', 'worker'])).trim();
    for (const w of workers) await w.docker(['swarm', 'join', '--token', token, '--advertise-addr', w.lanAddress, `${manager.lanAddress}:2377`]);
    for (const h of lab.hosts) {
      await h.docker([
        'network', 'create', '--config-only', '--ipam-driver', PLUGIN, '--subnet', LAN.subnet, '--gateway', LAN.gateway,
        '--ip-range', LAN.containerRange, '-o', 'parent=eth0', 'lanconf',
      ]);
    }
    await manager.docker(['network', 'create', '-d', PLUGIN, '--scope', 'swarm', '--config-from', 'lanconf', NETWORK]);
    await manager.docker([
      'service', 'create', '--detach', '--name', SERVICE, '--replicas', '6', '--endpoint-mode', 'dnsrr',
      '--network', NETWORK, IMAGE, 'sleep', '3600',
    ]);
    const running = await settledTasks(6);
    const addresses = running.map((t) => t.address);
    assert.equal(new Set(addresses).size, addresses.length, `cluster-unique addresses: ${addresses.join(', ')}`);
    assert.ok(new Set(running.map((t) => t.host.name)).size >= 2, 'tasks run on several nodes');
    const records = await etcdAssignments(lab);
    for (const t of running) assert.equal(records.get(t.address), t.host.name, `etcd records ${t.address} as held by ${t.host.name}`);

    for (const from of running) {
      for (const to of running) {
        if (to.id === from.id) continue;
        const out = await from.host.docker(['exec', from.id, 'ping', '-c', '1', '-w', '3', to.address]);
        assert.match(out, /1 packets received/, `${from.address} (${from.host.name}) reaches ${to.address} (${to.host.name})`);
      }
    }

    // Every node's tasks resolve the service name to every task, wherever it runs (records gossiped by swarm).
    const expected = [...addresses].sort();
    for (const h of new Set(running.map((t) => t.host))) {
      const task = running.find((t) => t.host === h)!;
      const got = await waitFor(`${SERVICE} resolving to all tasks on ${h.name}`, async () => {
        const r = await resolve(task, SERVICE);
        return JSON.stringify(r) === JSON.stringify(expected) ? r : undefined;
      }, 30_000, 500).catch(async () => resolve(task, SERVICE));
      assert.deepEqual(got, expected, `on ${h.name}, ${SERVICE} resolves to every task`);
    }

    await manager.docker(['service', 'scale', '--detach', `${SERVICE}=2`]);
    const left = await settledTasks(2);
    const kept = new Set(left.map((t) => t.address));
    const freed = addresses.filter((a) => !kept.has(a));
    const afterScale = await waitFor('released addresses of removed tasks', async () => {
      const r = await etcdAssignments(lab);
      return freed.every((a) => !r.has(a)) ? r : undefined;
    }, 30_000, 500).catch(() => etcdAssignments(lab));
    for (const a of freed) assert.ok(!afterScale.has(a), `${a} is released after scale-down`);
    for (const t of left) assert.equal(afterScale.get(t.address), t.host.name);
  });
});
