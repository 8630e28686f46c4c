import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execArgs } from '../../src/hostnet/exec.js';
import { vethNames } from '../../src/hostnet/names.js';
import { DriverState } from '../../src/netdriver/state.js';
import { acquireHostLock, STATE_DIR_LOCK_FILE } from '../../src/server/host-lock.js';
import { makeBridgeNetns, type BridgeNetns } from '../harness/bridge-netns.js';
import { missing } from '../harness/requirements.js';
import { sh } from '../harness/sh.js';
import { spawnServerInNetns, waitServing, type NetnsServer } from './netns-server.js';

const hexId = (): string => randomBytes(32).toString('hex');

describe('host lock in one process', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flatnet-lock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a second holder of the namespace name or of the state dir is refused, naming the first; release frees both', async () => {
    const name = `\0flatnet-lock-test-${randomBytes(4).toString('hex')}`;
    const a = { stateDir: join(dir, 'a'), socket: join(dir, 'a.sock'), namespaceLockName: name };
    const first = await acquireHostLock(a);
    await assert.rejects(
      acquireHostLock({ ...a, stateDir: join(dir, 'b'), socket: join(dir, 'b.sock') }),
      new RegExp(
        `another flatnet server \\(pid ${process.pid}, state dir ${a.stateDir}.*already runs in this network namespace`,
      ),
    );
    assert.equal(existsSync(join(dir, 'b')), false, 'a refused start creates nothing');
    await assert.rejects(
      acquireHostLock({ ...a, namespaceLockName: `${name}-other` }),
      new RegExp(`\\(pid ${process.pid}, .*uses the state directory ${a.stateDir}`),
    );
    await first.release();
    assert.deepEqual(await readdir(a.stateDir), [], 'release leaves no lock file');
    const again = await acquireHostLock({ ...a, namespaceLockName: `${name}-other` });
    await again.release();
  });
});

describe('a second flatnet server on one host', { skip: missing('root', 'iproute2') }, () => {
  let ns: BridgeNetns;
  let otherNs: BridgeNetns;
  let dir: string;
  const servers: NetnsServer[] = [];
  const endpointId = hexId();
  const veth = vethNames(endpointId);

  before(async () => {
    ns = await makeBridgeNetns('fnlk', '10.79.0.2/24');
    otherNs = await makeBridgeNetns('fnlo', '10.79.0.3/24');
    dir = await mkdtemp(join(tmpdir(), 'fnlock-'));
    // The first server's world: a network on br0 and a live container veth with its endpoint record.
    const state = new DriverState(join(dir, 'state-a'));
    await state.init();
    const networkId = hexId();
    await state.putNetwork({
      networkId,
      bridge: 'br0',
      parent: 'nic0',
      mtu: 1500,
      gateway: '',
      pool: '10.79.0.0/24',
      gatewayIPv6: '',
      poolIPv6: '',
      generic: {},
      internal: false,
      createdAt: new Date().toISOString(),
    });
    await state.putEndpoint({
      endpointId,
      networkId,
      address: '10.79.0.10/24',
      addressIPv6: '',
      macAddress: '0a:66:0a:4f:00:0a',
      hostIfname: veth.host,
      containerIfname: veth.container,
      createdAt: new Date().toISOString(),
    });
    await ns.ip(['link', 'add', veth.host, 'type', 'veth', 'peer', 'name', veth.container]);
    await ns.ip(['link', 'set', veth.host, 'master', 'br0', 'up']);
  });
  after(async () => {
    for (const s of servers) await s.stop('SIGKILL');
    await ns?.remove();
    await otherNs?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = (netns: string, socket: string, stateDir: string): NetnsServer => {
    const s = spawnServerInNetns(netns, socket, stateDir);
    servers.push(s);
    return s;
  };
  const vethAlive = async (): Promise<boolean> =>
    (await execArgs('ip', ['-n', ns.ns, 'link', 'show', veth.host])).code === 0;

  test('is refused before it touches links, socket or state; after kill -9 of the first a new one starts', async () => {
    const socketA = join(dir, 'a', 'flatnet.sock');
    const socketB = join(dir, 'b', 'flatnet.sock');
    await mkdir(join(dir, 'b'));
    const first = start(ns.ns, socketA, join(dir, 'state-a'));
    await waitServing(first, socketA);
    assert.equal(await vethAlive(), true, 'the first server keeps its own endpoint veth');

    // Same namespace, other state dir: same socket, then another socket too.
    for (const socket of [socketA, socketB]) {
      const intruder = start(ns.ns, socket, join(dir, 'state-b'));
      assert.equal(await intruder.exited(), 2, intruder.output());
      const refusal = intruder
        .output()
        .split('\n')
        .filter((l) => l.startsWith('flatnet: '));
      assert.equal(refusal.length, 1, intruder.output());
      assert.match(
        refusal[0] ?? '',
        new RegExp(`another flatnet server \\(pid ${first.pid}, .*already runs in this network namespace`),
      );
      assert.equal(await vethAlive(), true, 'the veth of the first server survives');
      assert.equal(existsSync(join(dir, 'state-b')), false, 'no state was written');
      assert.equal(existsSync(socketB), false, 'no socket was made');
      assert.ok((await lstat(socketA)).isSocket());
    }
    // Another namespace, the first server's state dir.
    const sharing = start(otherNs.ns, socketB, join(dir, 'state-a'));
    assert.equal(await sharing.exited(), 2, sharing.output());
    assert.match(
      sharing.output(),
      new RegExp(`flatnet: another flatnet server \\(pid ${first.pid}, .*uses the state directory`),
    );
    assert.equal(existsSync(socketB), false);
    // Another namespace, the first server's plugin socket.
    const onSocket = start(otherNs.ns, socketA, join(dir, 'state-c'));
    assert.equal(await onSocket.exited(), 2, onSocket.output());
    assert.match(onSocket.output(), /flatnet: another server is already listening on/);
    assert.equal(await vethAlive(), true);

    await first.stop('SIGKILL');
    assert.ok(
      (await lstat(join(dir, 'state-a', STATE_DIR_LOCK_FILE))).isSocket(),
      'kill -9 left the state dir lock file',
    );
    const leftover = join(dir, 'state-a', `.server.${first.pid}.sock`);
    assert.ok(existsSync(leftover));
    const successor = start(ns.ns, socketA, join(dir, 'state-a'));
    await waitServing(successor, socketA);
    assert.equal(await vethAlive(), true);
    assert.equal(existsSync(leftover), false, "the dead server's private lock name is cleaned up");
    await successor.stop('SIGTERM');
    assert.equal(await successor.exited(), 0, successor.output());
    assert.equal(existsSync(join(dir, 'state-a', STATE_DIR_LOCK_FILE)), false, 'a clean stop removes its lock file');
    await sh('ip', ['-n', ns.ns, 'link', 'del', veth.host]);
  });
});
