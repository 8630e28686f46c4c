import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { waitFor } from '../../src/lab/processes.js';
import { formatSubnet, parseSubnet } from '../../src/net/address.js';
import { silentLogger } from '../../src/observability/logger.js';
import { IpamKeys } from '../../src/store/keys.js';
import { EtcdPoolWatch } from '../../src/store/pool-watch.js';
import { testEtcdClient } from '../harness/etcd-client.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';
import { TcpProxy } from '../harness/tcp-proxy.js';

/**
 * The pool watch against a real etcd, its client behind a proxy that can cut it off: a change made while the host
 * was cut off arrives once it is back (the watch resumed from its revision); a change compacted away while it was
 * cut off makes it resync (a full re-read), and the watch goes on from there.
 */
const skip = missing('etcd');
const subnet = parseSubnet('10.47.0.0/24');

const lab = etcdFixture(skip);

async function rig() {
  const prefix = `/watch-${randomBytes(4).toString('hex')}`;
  const keys = new IpamKeys(prefix);
  const proxy = await TcpProxy.start(lab.cluster.endpoints[0] as string);
  const host = testEtcdClient([proxy.url], { prefix });
  const heard = { changed: [] as string[], resyncs: 0 };
  const watch = new EtcdPoolWatch(
    host,
    keys,
    { changed: (s) => heard.changed.push(formatSubnet(s)), resync: () => heard.resyncs++ },
    silentLogger(),
  );
  const put = async (v: string): Promise<string> =>
    (await lab.etcd.put(keys.config(subnet)).value(v).exec()).header.revision;
  const close = async (): Promise<void> => {
    await watch.close();
    host.close();
    await proxy.close();
  };
  watch.follow([subnet]);
  // attached once it hears a change (a change made before it attached is not its business)
  await waitFor('the watch to attach', async () => {
    await put(`{"v":${Date.now()}}`);
    await new Promise((res) => setTimeout(res, 200));
    return heard.changed.length > 0 ? true : undefined;
  });
  return { keys, proxy, watch, heard, put, close };
}

test('a change made while the host was cut off arrives when it is back, with no resync', { skip }, async () => {
  const r = await rig();
  try {
    const seen = r.heard.changed.length;
    r.proxy.setMode('refuse');
    await r.put('{"v":1}');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(r.heard.changed.length, seen, 'nothing heard while cut off');
    r.proxy.setMode('pass');
    await waitFor('the missed change', async () => (r.heard.changed.length > seen ? true : undefined));
    assert.deepEqual(r.heard.changed.slice(seen), ['10.47.0.0/24']);
    assert.equal(r.heard.resyncs, 0);
  } finally {
    await r.close();
  }
});

test('a revision compacted while the host was cut off means a resync, and the watch goes on', { skip }, async () => {
  const r = await rig();
  try {
    r.proxy.setMode('refuse');
    await r.put('{"v":1}');
    const last = await r.put('{"v":2}');
    await lab.etcd.kv.compact({ revision: last, physical: true });
    r.proxy.setMode('pass');
    await waitFor('the resync', async () => (r.heard.resyncs > 0 ? true : undefined));
    assert.equal(r.heard.resyncs, 1);
    const seen = r.heard.changed.length;
    // the watch starts afresh: the next change is heard (retried until the new watcher is attached)
    await waitFor('a change after the resync', async () => {
      await r.put(`{"v":${Date.now()}}`);
      await new Promise((res) => setTimeout(res, 200));
      return r.heard.changed.length > seen ? true : undefined;
    });
  } finally {
    await r.close();
  }
});

test('pools no longer followed are let go', { skip }, async () => {
  const r = await rig();
  try {
    r.watch.follow([]);
    const seen = r.heard.changed.length;
    await r.put('{"v":9}');
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(r.heard.changed.length, seen);
  } finally {
    await r.close();
  }
});
