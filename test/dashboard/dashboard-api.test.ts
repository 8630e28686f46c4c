import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RequestHandler } from 'express';
import request from 'supertest';
import { createDashboardApp, SAFE_HEADERS, staticDirFor } from '../../src/dashboard/app.js';
import { ChangeFeed, MAX_CLIENTS } from '../../src/dashboard/change-feed.js';
import { DashboardData } from '../../src/dashboard/dashboard-data.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ChangeReport } from '../../src/store/change-watch.js';
import { poolWithRange } from '../fakes/pools.js';
import { assertOneLineError, runFlatnet } from '../harness/cli-runner.js';

/** The dashboard's HTTP face over the in-memory IPAM: headers, refusals, the JSON it serves, the event stream. */
const logger = silentLogger();
const policy = { cooldownSec: 300, stickySec: 86_400 };

async function app() {
  const { stores, admin } = await poolWithRange('10.1.0.1/22', '10.1.3.254');
  const driver = new IpamDriverService(stores, 'h1', logger);
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: '10.1.0.0/22',
    subPool: '',
    options: {},
    v6: false,
  });
  const a = await driver.requestAddress({ poolId, address: '10.1.2.7', kind: 'container', endpointName: 'web-1' });
  const data = new DashboardData({
    admin,
    stores,
    hosts: {
      list: async () => [
        { hostId: 'h1', hostname: 'n1', version: '0.1.0', startedAt: 't', alive: true, lastSeen: 't' },
      ],
    },
    policy,
  });
  let emit: ((r: ChangeReport) => void) | undefined;
  let stops = 0;
  const feed = new ChangeFeed(async (onChange) => {
    emit = onChange;
    return {
      stop: async () => {
        stops++;
      },
    };
  }, logger);
  return {
    app: createDashboardApp({ data, feed, logger }),
    address: a.address.split('/')[0] as string,
    feed,
    emit: (r: ChangeReport) => emit?.(r),
    stops: () => stops,
  };
}

test('every answer carries the safe headers; the API is not cached; only GET is served', async () => {
  const { app: a } = await app();
  for (const path of ['/', '/dashboard.js', '/api/pools', '/nope']) {
    const res = await request(a).get(path);
    for (const [k, v] of Object.entries(SAFE_HEADERS)) assert.equal(res.headers[k.toLowerCase()], v, `${path} ${k}`);
    assert.match(res.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(res.headers['x-powered-by'], undefined);
  }
  assert.equal((await request(a).get('/api/hosts')).headers['cache-control'], 'no-store');
  for (const method of ['post', 'put', 'delete', 'patch'] as const) {
    const res = await request(a)[method]('/api/pools');
    assert.equal(res.status, 405);
    assert.equal(res.headers.allow, 'GET, HEAD');
    assert.match(res.body.error as string, /read-only/);
  }
});

test('pools, hosts, a block page, a block and a search as JSON', async () => {
  const { app: a, address } = await app();
  const pools = (await request(a).get('/api/pools').expect(200)).body;
  assert.equal(pools.pools[0].subnet, '10.1.0.0/22');
  assert.equal(pools.pools[0].used, 1);
  assert.equal(pools.pools[0].blocks, '4');
  const hosts = (await request(a).get('/api/hosts').expect(200)).body;
  assert.deepEqual(hosts.hosts[0].claims, [{ pool: '10.1.0.0/22', poolId: '10.1.0.0/22', networks: 1 }]);
  assert.equal(hosts.hosts[0].addresses, 1);
  const page = (await request(a).get('/api/pools/10.1.0.0_22/blocks?from=1&count=2').expect(200)).body;
  assert.deepEqual(
    page.blocks.map((b: { block: string; taken: number }) => [b.block, b.taken]),
    [
      ['1', 0],
      ['2', 1],
    ],
  );
  assert.equal(page.total, '4');
  const block = (await request(a).get('/api/pools/10.1.0.0_22/blocks/2').expect(200)).body;
  assert.equal(block.cells.length, 256);
  assert.deepEqual(block.cells[7], {
    bit: 7,
    address,
    state: 'held',
    hostId: 'h1',
    since: block.cells[7].since,
    endpointName: 'web-1',
  });
  const byName = (await request(a).get('/api/search?q=web-1').expect(200)).body;
  assert.deepEqual(byName.hits, [
    { pool: '10.1.0.0/22', address, block: '2', position: '2', hostId: 'h1', endpointName: 'web-1' },
  ]);
  const byAddress = (await request(a).get('/api/search?q=10.1.3.9').expect(200)).body;
  assert.deepEqual(byAddress.hits, [{ pool: '10.1.0.0/22', address: '10.1.3.9', block: '3', position: '3' }]);
  assert.deepEqual((await request(a).get('/api/search?q=nobody').expect(200)).body.hits, []);
});

test('bad paths and query parameters get a 400 with a JSON error, unknown pools and blocks a 404', async () => {
  const { app: a } = await app();
  const bad: [string, RegExp][] = [
    ['/api/pools/10.1.0.0/blocks/2', /bad path: pool: a pool is written SUBNET_PREFIX/],
    ['/api/pools/10.1.0.0_99/blocks/2', /bad path: pool/],
    ['/api/pools/x_22/blocks', /bad path: pool/],
    ['/api/pools/10.1.0.0_22/blocks/ZZ', /bad path: block/],
    ['/api/pools/10.1.0.0_22/blocks?count=1000', /bad query: count/],
    ['/api/pools/10.1.0.0_22/blocks?from=-1', /bad query: from/],
    ['/api/pools/10.1.0.0_22/blocks?extra=1', /bad query/],
    ['/api/pools?x=1', /bad query/],
    ['/api/search', /bad query: q/],
    ['/api/search?q=', /bad query: q/],
    ['/api/search?q=a&q=b', /bad query: q/],
    ['/api/search?q=%3Cscript%3E', /bad query: q/],
  ];
  for (const [path, error] of bad) {
    const res = await request(a).get(path);
    assert.equal(res.status, 400, path);
    assert.match(res.headers['content-type'] ?? '', /application\/json/, path);
    assert.match(res.body.error as string, error, path);
  }
  assert.equal((await request(a).get('/api/nothing')).status, 404);
  assert.equal((await request(a).get('/api/pools/10.2.0.0_22/blocks/0')).status, 404);
  assert.equal((await request(a).get('/api/pools/10.1.0.0_22/blocks/4')).status, 404, 'beyond the /22');
});

test('the page is self-contained: no inline script or style, nothing loaded from elsewhere', async () => {
  const dir = staticDirFor(new URL('../../src/dashboard/app.js', import.meta.url).href);
  const files = await readdir(dir);
  assert.deepEqual(files.sort(), ['dashboard.css', 'dashboard.js', 'index.html']);
  const html = await readFile(join(dir, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script');
  assert.doesNotMatch(html, /\sstyle=|<style/, 'no inline style');
  assert.doesNotMatch(html, /\son[a-z]+=/, 'no inline handlers');
  for (const f of files)
    assert.doesNotMatch(await readFile(join(dir, f), 'utf8'), /https?:\/\//, `${f} names no other site`);
  assert.doesNotMatch(await readFile(join(dir, 'dashboard.js'), 'utf8'), /innerHTML|eval\(|new Function/);
});

test('change events reach open pages; the watch runs only while a page listens; pages are bounded', async () => {
  const { app: a, emit, stops, feed } = await app();
  const server = createServer(a);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`;
  try {
    const ctrl = new AbortController();
    const res = await fetch(url, { signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    emit({ pools: new Map([['10.1.0.0/22', new Set(['2', '1'])]]), hosts: true });
    while (!text.includes('event: change')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /data: \{"pools":\{"10\.1\.0\.0\/22":\["1","2"\]\},"hosts":true\}/);
    ctrl.abort();
    for (let i = 0; i < 100 && feed.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(feed.size, 0);
    assert.equal(stops(), 1, 'the watch stops with the last page');

    const ctrls = Array.from({ length: MAX_CLIENTS }, () => new AbortController());
    const open = await Promise.all(ctrls.map((c) => fetch(url, { signal: c.signal })));
    assert.ok(open.every((r) => r.status === 200));
    const refused = await fetch(url);
    assert.equal(refused.status, 503);
    assert.match(((await refused.json()) as { error: string }).error, /at most 32 pages/);
    for (const c of ctrls) c.abort();
  } finally {
    await feed.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('the overview is read once for many pages at a time, and afresh after etcd changed', async () => {
  const { stores, admin } = await poolWithRange('10.1.0.1/22', '10.1.3.254');
  let reads = 0;
  const counting = Object.assign(Object.create(admin) as typeof admin, {
    poolSummaries: () => {
      reads++;
      return admin.poolSummaries();
    },
  });
  const data = new DashboardData({ admin: counting, stores, hosts: { list: async () => [] }, policy });
  const driver = new IpamDriverService(stores, 'h1', logger);
  const { poolId } = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: '10.1.0.0/22',
    subPool: '',
    options: {},
    v6: false,
  });
  const first = await Promise.all(Array.from({ length: 5 }, () => data.overview()));
  assert.equal(reads, 1);
  assert.ok(first.every((o) => o.pools[0]?.used === 0));
  await data.overview();
  assert.equal(reads, 1, 'served again while nothing changed');
  await driver.requestAddress({ poolId, address: '', kind: 'container' });
  data.invalidate();
  const after = await Promise.all(Array.from({ length: 5 }, () => data.overview()));
  assert.equal(reads, 2);
  assert.ok(after.every((o) => o.pools[0]?.used === 1));
});

test('flatnet dashboard refuses a bad --listen, and a taken port, in one line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flatnet-dashboard-cli-'));
  await writeFile(join(dir, 'none.conf'), '# empty\n');
  const env = { PATH: process.env.PATH ?? '', FLATNET_CONFIG: join(dir, 'none.conf') };
  const bad = await runFlatnet(['dashboard', '--listen', 'nowhere'], { env });
  assertOneLineError(bad, /--listen nowhere: a listen address is HOST:PORT/, 2);
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const port = (taken.address() as AddressInfo).port;
    const busy = await runFlatnet(['dashboard', '--listen', `127.0.0.1:${port}`], { env });
    assertOneLineError(busy, /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\); choose another --listen/, 2);
  } finally {
    await new Promise((r) => taken.close(r));
    await rm(dir, { recursive: true, force: true });
  }
});

test('a /8 pool pages its 65,536 blocks and opens one with as few reads as a /24', async () => {
  const { stores, admin } = await poolWithRange('10.0.0.1/8', '10.255.255.254');
  const data = new DashboardData({ admin, stores, hosts: { list: async () => [] }, policy });
  const a = createDashboardApp({
    data,
    feed: new ChangeFeed(async () => ({ stop: async () => undefined }), logger),
    logger,
  });
  const page = (await request(a).get('/api/pools/10.0.0.0_8/blocks?from=65500&count=64').expect(200)).body;
  assert.equal(page.total, '65536');
  assert.equal(page.blocks.length, 36);
  assert.equal(page.blocks[0].first, '10.255.220.0');
  const before = stores.stats.reads;
  const block = (await request(a).get('/api/pools/10.0.0.0_8/blocks/ffff').expect(200)).body;
  assert.equal(block.cells.length, 256);
  assert.equal(block.cells[255].state, 'outside', 'the broadcast address');
  assert.ok(stores.stats.reads - before < 20, `one block read, not the pool (${stores.stats.reads - before} reads)`);
});

test('a page gets 503 when the watch does not start in time, and a watch that starts late is stopped', async () => {
  const { stores, admin } = await poolWithRange();
  const data = new DashboardData({ admin, stores, hosts: { list: async () => [] }, policy });
  let startWatch!: () => void;
  let stopped = 0;
  const feed = new ChangeFeed(
    () =>
      new Promise((resolve) => {
        startWatch = () =>
          resolve({
            stop: async () => {
              stopped++;
            },
          });
      }),
    logger,
    50,
  );
  const a = createDashboardApp({ data, feed, logger });
  const res = await request(a).get('/api/events').expect(503);
  assert.match(res.body.error as string, /etcd did not answer; the page retries/);
  startWatch();
  for (let i = 0; i < 100 && stopped === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(stopped, 1);
  await feed.close();
});

test('GET /metrics is served by the handler given to the app, with the same headers', async () => {
  const { stores, admin } = await poolWithRange();
  const data = new DashboardData({ admin, stores, hosts: { list: async () => [] }, policy });
  const feed = new ChangeFeed(async () => ({ stop: async () => undefined }), logger);
  const metrics: RequestHandler = (_req, res) => {
    res.type('text/plain').send('flatnet_pool_size{pool="10.1.0.0/22"} 1020\n');
  };
  const a = createDashboardApp({ data, feed, logger, metrics });
  const res = await request(a).get('/metrics').expect(200);
  assert.match(res.text, /^flatnet_pool_size/);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal((await request(createDashboardApp({ data, feed, logger })).get('/metrics')).status, 404);
});
