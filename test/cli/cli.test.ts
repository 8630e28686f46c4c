import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { assertOk, assertOneLineError, runFlatnet, type CliResult } from '../harness/cli-runner.js';
import { startFlatnetServer, type FlatnetServer } from '../harness/flatnet-server.js';
import { pluginCall } from '../harness/plugin-client.js';
import { missing } from '../harness/requirements.js';

/** The built CLI as a child process against a real etcd, each test on its own prefix. */
const skip = missing('etcd');
let cluster: EtcdCluster | undefined;
let dir = '';

function newPrefix(): string {
  return `/cli-${Math.random().toString(36).slice(2, 8)}`;
}

function etcdEnv(prefix: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    FLATNET_ETCD_ENDPOINTS: cluster?.endpoints.join(',') ?? '',
    FLATNET_ETCD_PREFIX: prefix,
    FLATNET_ETCD_TIMEOUT_MS: '3000',
    FLATNET_CONFIG: join(dir, 'none.conf'),
  };
}

function flatnet(args: string[], prefix: string, env: Record<string, string> = {}): Promise<CliResult> {
  return runFlatnet(args, { env: { ...etcdEnv(prefix), ...env } });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flatnet-cli-'));
  // an empty config file: the machine's /etc/flatnet/flatnet.conf must not leak into the tests
  await writeFile(join(dir, 'none.conf'), '# empty\n');
  if (!skip) cluster = await startEtcdCluster();
});
after(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('version and usage errors need no etcd', async () => {
  const v = await flatnet(['version'], '/x');
  assertOk(v);
  assert.match(v.stdout, /^flatnet \d+\.\d+\.\d+/);
  assertOneLineError(await flatnet(['ip-range', 'list', '--bogus'], '/x'), /unknown option '--bogus'/, 2);
  assertOneLineError(await flatnet(['no-such-command'], '/x'), /unknown command/, 2);
  assertOneLineError(await flatnet(['ip-range', 'add', '--ip-start', '10.0.0.1/24'], '/x'), /--ip-end/, 2);
  assertOneLineError(await flatnet(['ip-range', 'list', '--etcd-endpoints', 'ftp://x'], '/x'), /--etcd-endpoints/, 2);
});

test('ip-range add, list, overlap and malformed input, remove', { skip }, async () => {
  const p = newPrefix();
  const add = await flatnet(['ip-range', 'add', '--ip-start', '192.168.0.100/24', '--ip-end', '192.168.0.200/24'], p);
  assertOk(add);
  assert.match(add.stdout, /192\.168\.0\.0\/24/);
  const listJson = await flatnet(['ip-range', 'list', '--json'], p);
  assertOk(listJson);
  const ranges = JSON.parse(listJson.stdout) as { subnet: string; start: string; end: string; size: string }[];
  assert.equal(ranges.length, 1);
  assert.deepEqual(
    [ranges[0]?.subnet, ranges[0]?.start, ranges[0]?.end, ranges[0]?.size],
    ['192.168.0.0/24', '192.168.0.100', '192.168.0.200', '101'],
  );
  const table = await flatnet(['ip-range', 'list'], p);
  assert.match(table.stdout, /^SUBNET\s+START\s+END/);
  assert.match(table.stdout, /192\.168\.0\.0\/24\s+192\.168\.0\.100\s+192\.168\.0\.200\s+101/);

  assertOneLineError(
    await flatnet(['ip-range', 'add', '--ip-start', '192.168.0.150/24', '--ip-end', '192.168.0.250/24'], p),
    /overlap/i,
    2,
  );
  assertOneLineError(
    await flatnet(['ip-range', 'add', '--ip-start', '192.168.0.300/24', '--ip-end', '192.168.0.310/24'], p),
    /./,
    2,
  );
  assertOneLineError(
    await flatnet(['ip-range', 'add', '--ip-start', '192.168.0.50/24', '--ip-end', '192.168.0.40/24'], p),
    /./,
    2,
  );
  assertOneLineError(
    await flatnet(['ip-range', 'add', '--ip-start', '192.168.0.50/24', '--ip-end', '192.168.1.60/23'], p),
    /./,
    2,
  );
  const after = JSON.parse((await flatnet(['ip-range', 'list', '--json'], p)).stdout) as unknown[];
  assert.equal(after.length, 1, 'refused input changed nothing');

  assertOk(await flatnet(['ip-range', 'remove', '--ip-start', '192.168.0.100/24', '--ip-end', '192.168.0.200/24'], p));
  assert.deepEqual(JSON.parse((await flatnet(['ip-range', 'list', '--json'], p)).stdout), []);
});

test('host-range add with gateway, list, remove; the gateway shows in status', { skip }, async () => {
  const p = newPrefix();
  assertOk(await flatnet(['ip-range', 'add', '--ip-start', '10.20.0.100/24', '--ip-end', '10.20.0.199/24'], p));
  const add = await flatnet(
    ['host-range', 'add', '--ip-start', '10.20.0.1/24', '--ip-end', '10.20.0.20/24', '--gateway', '10.20.0.1'],
    p,
  );
  assertOk(add);
  const list = JSON.parse((await flatnet(['host-range', 'list', '--json'], p)).stdout) as {
    start: string;
    end: string;
  }[];
  assert.deepEqual(
    list.map((r) => [r.start, r.end]),
    [['10.20.0.1', '10.20.0.20']],
  );
  const status = JSON.parse((await flatnet(['status', '--json'], p)).stdout) as {
    pools: { subnet: string; gateway?: string; used: number }[];
  };
  assert.equal(status.pools[0]?.gateway, '10.20.0.1');
  assertOneLineError(
    await flatnet(['host-range', 'add', '--ip-start', '10.20.0.10/24', '--ip-end', '10.20.0.30/24'], p),
    /overlap/i,
    2,
  );
  assertOk(await flatnet(['host-range', 'remove', '--ip-start', '10.20.0.1/24', '--ip-end', '10.20.0.20/24'], p));
  assert.deepEqual(JSON.parse((await flatnet(['host-range', 'list', '--json'], p)).stdout), []);
});

function startServer(prefix: string, hostId: string): Promise<FlatnetServer> {
  return startFlatnetServer({
    socket: join(dir, `${hostId}.sock`),
    args: ['--host-id', hostId, '--state-dir', join(dir, hostId), '--log-level', 'warn'],
    env: etcdEnv(prefix),
  });
}

test('ip list/release and status against addresses a running server handed out', { skip }, async () => {
  const p = newPrefix();
  assertOk(await flatnet(['ip-range', 'add', '--ip-start', '10.30.0.10/24', '--ip-end', '10.30.0.19/24'], p));
  const server = await startServer(p, 'cli-h1');
  try {
    const spaces = await pluginCall(server.socket, 'IpamDriver.GetDefaultAddressSpaces');
    const pool = await pluginCall(server.socket, 'IpamDriver.RequestPool', {
      AddressSpace: spaces.json.LocalDefaultAddressSpace,
      Pool: '10.30.0.0/24',
      SubPool: '',
      Options: null,
      V6: false,
    });
    assert.equal(pool.status, 200, JSON.stringify(pool.json));
    const addr = await pluginCall(server.socket, 'IpamDriver.RequestAddress', {
      PoolID: pool.json.PoolID,
      Address: '',
      Options: null,
    });
    assert.equal(addr.status, 200, JSON.stringify(addr.json));
    const address = String(addr.json.Address).split('/')[0] ?? '';

    const list = await flatnet(['ip', 'list', '--json'], p);
    assertOk(list);
    const assigned = JSON.parse(list.stdout) as { address: string; hostId: string; subnet: string }[];
    assert.deepEqual(
      assigned.map((a) => [a.address, a.hostId, a.subnet]),
      [[address, 'cli-h1', '10.30.0.0/24']],
    );
    assert.deepEqual(JSON.parse((await flatnet(['ip', 'list', '--json', '--host', 'other'], p)).stdout), []);
    const table = await flatnet(['ip', 'list', '--subnet', '10.30.0.0/24'], p);
    assert.match(table.stdout, /^ADDRESS\s+SUBNET\s+HOST\s+SINCE\s+NAME\s+CONTAINER\s+ENDPOINT\s+NETWORK\s+MAC/);
    assert.match(table.stdout, new RegExp(`${address.replace(/\./g, '\\.')}\\s+10\\.30\\.0\\.0/24\\s+cli-h1`));

    const status = JSON.parse((await flatnet(['status', '--json'], p)).stdout) as {
      pools: { subnet: string; used: number; size: string; free: string }[];
      hosts: { hostId: string; state: string; addresses: number }[];
    };
    assert.equal(status.pools[0]?.used, 1);
    assert.deepEqual(
      status.hosts.map((h) => [h.hostId, h.state, h.addresses]),
      [['cli-h1', 'up', 1]],
    );
    const statusText = await flatnet(['status'], p);
    assert.match(statusText.stdout, /cli-h1\s+\S+\s+up/);

    const release = await flatnet(['ip', 'release', address], p);
    assertOk(release);
    assert.match(release.stdout, /released/);
    assert.deepEqual(JSON.parse((await flatnet(['ip', 'list', '--json'], p)).stdout), []);
    const again = await flatnet(['ip', 'release', address], p);
    assertOk(again);
    assert.match(again.stdout, /not assigned/);
    assertOneLineError(await flatnet(['ip', 'release', 'not-an-ip'], p), /./, 2);
  } finally {
    await server.stop();
  }
  // liveness is shown, never acted on: the stopped host is listed as down
  const status = JSON.parse((await flatnet(['status', '--json'], p)).stdout) as {
    hosts: { hostId: string; state: string }[];
  };
  assert.deepEqual(
    status.hosts.map((h) => [h.hostId, h.state]),
    [['cli-h1', 'down']],
  );
});

test('etcd down or a wrong endpoint: one line, exit 1, nothing changed', { skip }, async () => {
  const p = newPrefix();
  const down = await flatnet(['ip-range', 'add', '--ip-start', '10.40.0.10/24', '--ip-end', '10.40.0.20/24'], p, {
    FLATNET_ETCD_ENDPOINTS: 'http://127.0.0.1:1',
    FLATNET_ETCD_TIMEOUT_MS: '1000',
  });
  assertOneLineError(down, /cannot reach etcd at http:\/\/127\.0\.0\.1:1/, 1);
  for (const cmd of [['status'], ['ip', 'list'], ['host-range', 'list']]) {
    assertOneLineError(
      await flatnet(cmd, p, { FLATNET_ETCD_ENDPOINTS: 'http://127.0.0.1:1', FLATNET_ETCD_TIMEOUT_MS: '1000' }),
      /etcd/,
      1,
    );
  }
  assert.deepEqual(JSON.parse((await flatnet(['ip-range', 'list', '--json'], p)).stdout), []);
});

test('create-network refuses before calling docker when no pool exists', { skip }, async () => {
  assertOneLineError(await flatnet(['create-network', '--name', 'lan'], newPrefix()), /no flatnet pool/, 2);
  assertOneLineError(
    await flatnet(['create-network', '--name', 'lan', '--mtu', 'big'], newPrefix()),
    /--mtu big is not valid/,
    2,
  );
});

test('create-network: every bad flag is one line, exit 2, and neither docker nor etcd changes', { skip }, async () => {
  const p = newPrefix();
  assertOk(await flatnet(['ip-range', 'add', '--ip-start', '10.60.0.10/24', '--ip-end', '10.60.0.99/24'], p));
  // Only a witness: any docker call at all leaves a line here (the refusals must come before it).
  const bin = join(dir, 'witness-bin');
  const calls = join(dir, 'docker-calls');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin, { recursive: true }));
  await writeFile(join(bin, 'docker'), `#!/bin/sh\necho "$@" >> ${calls}\nexit 1\n`);
  await chmod(join(bin, 'docker'), 0o755);
  const refusals: [string[], RegExp][] = [
    [['--name', '.'], /not a valid Docker network name/],
    [['--name', '..'], /not a valid Docker network name/],
    [['--name', 'a/b'], /not a valid Docker network name/],
    [['--name', 'host'], /predefines/],
    [['--name', 'lan', '--mtu', '1e3'], /--mtu 1e3 is not valid/],
    [['--name', 'lan', '--parent', 'eth0;reboot'], /--parent/],
    [['--name', 'lan', '--bridge', '..'], /--bridge/],
    [['--name', 'lan', '--subnet', '10.60.0.0'], /--subnet: /],
    [
      ['--name', 'lan', '--subnet', '10.60.0.0/24', '--gateway', '10.61.0.1'],
      /--gateway 10\.61\.0\.1 is not inside the subnet 10\.60\.0\.0\/24/,
    ],
    [['--name', 'lan', '--gateway', 'gw'], /--gateway: /],
    [
      ['--name', 'lan', '--subnet', '10.60.0.0/24', '--ip-range', '10.60.1.0/25'],
      /--ip-range 10\.60\.1\.0\/25 does not lie inside the subnet/,
    ],
    [
      ['--name', 'lan', '--subnet', '10.60.0.0/24', '--ip-range', '10.0.0.0/8'],
      /--ip-range 10\.0\.0\.0\/8 does not lie inside/,
    ],
    // Without --subnet the pool is the NIC's: a NIC that does not exist is refused before docker is called.
    [
      ['--name', 'lan', '--parent', 'fnnonic0'],
      /^flatnet: no NIC fnnonic0 on this host; give the LAN NIC with --parent, or the pool with --subnet$/,
    ],
  ];
  const rangesBefore = (await flatnet(['ip-range', 'list', '--json'], p)).stdout;
  for (const [args, pattern] of refusals) {
    assertOneLineError(
      await flatnet(['create-network', ...args], p, { PATH: `${bin}:${process.env.PATH ?? ''}` }),
      pattern,
      2,
    );
  }
  assert.equal(existsSync(calls), false, 'docker was never called');
  assert.equal((await flatnet(['ip-range', 'list', '--json'], p)).stdout, rangesBefore, 'etcd unchanged');
});

test(
  'doctor: etcd and the plugin socket pass, a missing bridge fails with its fix, exit non-zero',
  { skip },
  async () => {
    const p = newPrefix();
    const server = await startServer(p, 'doc-h1');
    try {
      const r = await flatnet(['doctor', '--socket', server.socket, '--bridge', 'fnnobr0'], p, {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      });
      assert.notEqual(r.code, 0);
      const lines = r.stdout.trim().split('\n');
      assert.match(lines.find((l) => l.includes(' etcd:')) ?? '', /^PASS/);
      assert.match(lines.find((l) => l.includes('plugin socket:')) ?? '', /^PASS/);
      assert.match(lines.find((l) => l.includes(' bridge:')) ?? '', /^FAIL .*fnnobr0 does not exist -- fix: /);
      assert.match(r.stderr, /^flatnet: \d check\(s\) failed/);
    } finally {
      await server.stop();
    }
  },
);
