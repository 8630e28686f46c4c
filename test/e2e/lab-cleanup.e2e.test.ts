import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { IMAGE, LAN, labLeftovers, startLab, teardownLab } from '../../src/lab/lab.js';
import { LabPullRefused } from '../../src/lab/no-pull.js';
import { signal } from '../../src/lab/proc-tools.js';
import { run } from '../../src/lab/processes.js';
import { missing } from '../harness/requirements.js';
import { labEngines } from './engines.js';

const skip = missing('root', 'docker', 'etcd', 'iproute2');

async function rootAddresses(): Promise<string> {
  return run('ip', ['-o', 'addr', 'show']);
}

for (const { engine, skip: engineSkip } of labEngines())
  describe(`lab on ${engine.name}`, () => {
    test(
      'lab stop() leaves no namespace, mount, process, cgroup or directory, and the root namespace untouched',
      { skip: skip || engineSkip },
      async () => {
        const rootBefore = await rootAddresses();
        const lab = await startLab({ hosts: 2, plugin: false, etcdMembers: 3, engine });
        try {
          // Something to clean: a running container on each host and a namespace holding the bed's links.
          for (const h of lab.hosts) await h.docker(['run', '-d', '--net', 'none', IMAGE, 'sleep', '600']);
          const pong = await lab.lanExec('busybox', ['ping', '-c', '1', '-W', '2', lab.hosts[1]!.lanAddress]);
          assert.match(pong, /1 packets received/);
          assert.match(await lab.etcdctl(['put', 'k', 'v']), /OK/);
          assert.equal((await lab.hosts[0]!.docker(['info', '--format', '{{.Name}}'])).trim(), 'h1');
          assert.notDeepEqual(
            (await labLeftovers(lab.id)).length,
            0,
            'a running bed must be visible to the leftover check',
          );
        } finally {
          await lab.stop();
        }
        assert.deepEqual(await labLeftovers(lab.id), []);
        assert.ok(!(await rootAddresses()).includes('10.99.'), 'the root namespace must never get a bed address');
        assert.equal((await rootAddresses()).includes('10.99.'), rootBefore.includes('10.99.'));
      },
    );

    test(
      'teardownLab(id) cleans a bed whose daemons were killed with SIGKILL (shims and containers left running)',
      { skip: skip || engineSkip },
      async () => {
        const lab = await startLab({ hosts: 1, plugin: false, etcdMembers: 1, engine });
        let cleaned = false;
        try {
          const host = lab.hosts[0]!;
          const cid = (await host.docker(['run', '-d', '--net', 'none', IMAGE, 'sleep', '600'])).trim();
          const containerPid = Number((await host.docker(['inspect', '--format', '{{.State.Pid}}', cid])).trim());
          assert.ok(containerPid > 0);
          const dockerdPid = Number((await readFile(join(host.execRoot, 'dockerd.pid'), 'utf8')).trim());
          const containerdPid = Number((await readFile(join(host.dir, 'containerd.pid'), 'utf8')).trim());
          signal(dockerdPid, 'SIGKILL');
          signal(containerdPid, 'SIGKILL');
          await new Promise((r) => setTimeout(r, 300));
          assert.ok(
            (await readFile(`/proc/${containerPid}/cmdline`, 'utf8')).startsWith('sleep'),
            'the container outlives its daemons',
          );
          await teardownLab(lab.id);
          cleaned = true;
          // Dead means gone, or a zombie waiting for whichever init inherited it.
          const stat = await readFile(`/proc/${containerPid}/stat`, 'utf8').catch(() => '');
          assert.ok(stat === '' || / Z /.test(stat), `the orphaned container must be killed (${stat})`);
          assert.deepEqual(await labLeftovers(lab.id), []);
        } finally {
          if (!cleaned) await lab.stop();
        }
      },
    );
    test(
      `${engine.name}: lab daemons resolve names only inside the lab and a test can never trigger a pull`,
      { skip: skip || engineSkip },
      async () => {
        const lab = await startLab({ hosts: 1, plugin: false, etcdMembers: 1, engine });
        try {
          const host = lab.hosts[0]!;
          assert.match(
            (await host.docker(['version', '--format', '{{.Server.Version}}'])).trim(),
            engine.name === 'docker28' ? /^28\./ : /^20\.10\./,
          );
          // /proc/PID/root shows the file system as that process sees it (its own mount namespace).
          const dockerdPid = Number((await readFile(join(host.execRoot, 'dockerd.pid'), 'utf8')).trim());
          const containerdPid = Number((await readFile(join(host.dir, 'containerd.pid'), 'utf8')).trim());
          for (const pid of [dockerdPid, containerdPid]) {
            assert.equal(
              await readFile(`/proc/${pid}/root/etc/resolv.conf`, 'utf8'),
              `nameserver ${LAN.gateway}\n`,
              'daemons see the lab resolver only',
            );
          }
          assert.match(
            await readFile(`/proc/${dockerdPid}/environ`, 'utf8'),
            /(^|\0)DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1(\0|$)/,
          );
          // Containers get the lab's DNS server (--dns), not the machine's.
          const resolv = await host.docker(['run', '--rm', '--net', 'none', IMAGE, 'cat', '/etc/resolv.conf']);
          const servers = resolv.split('\n').filter((l) => l.startsWith('nameserver'));
          assert.ok(servers.length > 0, `container resolv.conf names a server:\n${resolv}`);
          for (const line of servers) {
            assert.equal(line.trim(), `nameserver ${LAN.gateway}`, `container resolv.conf:\n${resolv}`);
          }
          const machineResolvers = (await readFile('/etc/resolv.conf', 'utf8')).match(/^nameserver\s+(\S+)/gm) ?? [];
          for (const r of machineResolvers)
            assert.ok(!resolv.includes(r.split(/\s+/)[1]!), `the machine's ${r} must not reach containers`);
          await assert.rejects(host.docker(['pull', 'busybox']), LabPullRefused);
          await assert.rejects(
            host.docker(['run', '--rm', '--net', 'none', 'flatnet-no-such-image:1', 'true']),
            /the lab never pulls/,
          );
          await assert.rejects(host.docker(['run', '--pull=always', '--rm', IMAGE, 'true']), LabPullRefused);
        } finally {
          await lab.stop();
        }
        assert.deepEqual(await labLeftovers(lab.id), []);
      },
    );
  });
