import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { parsePoolId } from '../../src/ipam/core/pool-id.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { ConflictService } from '../../src/ipam/services/conflict-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { OwnerService } from '../../src/ipam/services/owner-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import type { HostRegistration } from '../../src/store/host-registry.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { FLATNET_CLI } from '../harness/flatnet-server.js';
import { missing } from '../harness/requirements.js';
import { v4 } from '../harness/ipam-requests.js';

/**
 * `flatnet dashboard` in a real headless Chromium against a real etcd: allocations of two hosts (one up, one
 * down), a conflict, a cooling and a parked address; the page shows them in their colours and counts, finds a
 * container by name, and shows an allocation made after it loaded without a reload.
 * FLATNET_DASHBOARD_SCREENSHOT=FILE also saves a screenshot of the page (the README's).
 */
const skip = missing('root', 'etcd', 'chromium');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const POOL = '10.77.0.0/16';
const logger = silentLogger();
const cooling = { policy: { cooldownSec: 300, stickySec: 86_400 }, now: () => Math.floor(Date.now() / 1000) };
const bare = (cidr: string): string => cidr.split('/')[0] as string;

let dir = '';
let dashboard: ChildProcess | undefined;
let context: BrowserContext | undefined;
const registrations: HostRegistration[] = [];

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flatnet-dashboard-'));
  await writeFile(join(dir, 'none.conf'), '# empty\n');
});

after(async () => {
  await context?.close().catch(() => undefined);
  if (dashboard && dashboard.exitCode === null) {
    const exited = new Promise((r) => dashboard?.once('exit', r));
    dashboard.kill('SIGTERM');
    await exited;
  }
  for (const r of registrations) await r.stop().catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});
// after the hooks above, so that what they stop still has its etcd
const lab = etcdFixture(skip);

/** Starts `flatnet dashboard` on a free port and resolves with the URL it prints. */
function startDashboard(prefix: string): Promise<string> {
  const child = spawn(process.execPath, [FLATNET_CLI, 'dashboard', '--listen', '127.0.0.1:0'], {
    env: {
      PATH: process.env.PATH ?? '',
      FLATNET_ETCD_ENDPOINTS: lab.cluster.endpoints.join(','),
      FLATNET_ETCD_PREFIX: prefix,
      FLATNET_CONFIG: join(dir, 'none.conf'),
      FLATNET_RELEASE_COOLDOWN: '300',
      FLATNET_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dashboard = child;
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`flatnet dashboard exited ${code}: ${err}`)));
  });
}

async function cellState(page: Page, address: string): Promise<string | null> {
  return page.locator(`#grid [data-address="${address}"]`).getAttribute('data-state');
}

/** Finds ADDRESS with the search box: its block opens and its cell is selected. */
async function goTo(page: Page, address: string): Promise<void> {
  await page.fill('#search', address);
  await page.click('#search-form button');
  await page.locator(`#grid [data-address="${address}"].selected`).waitFor();
}

test(
  'the dashboard page shows pools, hosts and the map from etcd, finds a container, and follows changes live',
  { skip },
  async () => {
    const prefix = `/d${Math.random().toString(36).slice(2, 8)}`;
    const stores = new EtcdStores(lab.etcd as Etcd3, prefix, logger);
    const admin = new IpamAdminService(stores.ipam, logger, cooling);
    await admin.addIpRange({ start: '10.77.1.1/16', end: '10.77.2.254/16' });
    await admin.addHostRange({ start: '10.77.0.1/16', end: '10.77.0.254/16', gateway: '10.77.0.1' });
    const h1 = new IpamDriverService(stores.ipam, 'h1', logger, { cooling });
    const h2 = new IpamDriverService(new EtcdStores(lab.etcd as Etcd3, prefix, logger).ipam, 'h2', logger, { cooling });
    const { poolId } = await h1.requestPool(v4(POOL));
    await h2.requestPool(v4(POOL));
    registrations.push(stores.hosts.start({ hostId: 'h1', logger, hostname: 'node-1', version: '0.1.0' }));
    await registrations[0]?.ready;
    const gone = stores.hosts.start({ hostId: 'h2', logger, hostname: 'node-2', version: '0.1.0' });
    await gone.ready;
    await gone.stop();

    const owners = new OwnerService(stores.ipam.pools, stores.ipam.addresses, 'h1');
    const held: { address: string; name: string }[] = [];
    for (let i = 1; i <= 40; i++) {
      const name = `web-${i}`;
      const address = bare(
        (await h1.requestAddress({ poolId, address: '', kind: 'container', endpointName: name })).address,
      );
      await owners.record(address, {
        endpointId: `ep${i}`,
        containerId: `c0ffee${String(i).padStart(58, '0')}`,
        containerName: `/${name}`,
      });
      held.push({ address, name });
    }
    for (let i = 1; i <= 20; i++) {
      const address = bare(
        (await h2.requestAddress({ poolId, address: '', kind: 'container', endpointName: `db-${i}` })).address,
      );
      held.push({ address, name: `db-${i}` });
    }
    const parked = bare(
      (await h1.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'api-7' })).address,
    );
    await h1.releaseAddress(poolId, parked);
    const cool = bare((await h1.requestAddress({ poolId, address: '', kind: 'container' })).address);
    await h1.releaseAddress(poolId, cool);
    const [conflict] = await h1.upcoming(poolId, 1);
    assert.ok(conflict);
    const seen = { mac: '02:11:22:33:44:55', seenAt: new Date().toISOString(), seenBy: 'h1' };
    assert.equal(
      await new ConflictService(stores.ipam).record(parsePoolId(poolId), poolId, conflict, seen),
      'recorded',
    );

    const url = await startDashboard(prefix);
    const profile = join(dir, 'chromium-profile');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const response = await page.goto(url);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /script-src 'self'/);

    // Pools: counts as stored, and a bar.
    const row = page.locator(`#pools tr[data-pool="${POOL}"]`);
    await row.waitFor();
    assert.equal(await row.locator('.held').textContent(), String(held.length));
    assert.equal(await row.locator('.conflicts').textContent(), '1');
    assert.equal(await row.locator('.cooling').textContent(), '1');
    assert.equal(await row.locator('.parked').textContent(), '1');
    // Hosts: h1 up with its addresses and claim, h2 down.
    const h1Row = page.locator('#hosts tr[data-host="h1"]');
    await h1Row.waitFor();
    assert.equal(await h1Row.locator('.state').textContent(), 'up');
    assert.equal(await h1Row.locator('.addresses').textContent(), '40');
    assert.equal(await page.locator('#hosts tr[data-host="h2"] .addresses').textContent(), '20');
    assert.match((await h1Row.textContent()) ?? '', /10\.77\.0\.0\/16 ×1/);
    assert.equal(await page.locator('#hosts tr[data-host="h2"] .state').textContent(), 'down');

    // The same process serves the cluster-wide gauges for Prometheus.
    const scrape = await fetch(`${url}metrics`);
    assert.equal(scrape.status, 200);
    const text = await scrape.text();
    assert.match(
      text,
      new RegExp(`^flatnet_pool_held_addresses\\{pool="${POOL.replace(/\./g, '\\.')}"\\} ${held.length}$`, 'm'),
    );
    assert.match(text, /^flatnet_hosts_down_holding_addresses 1$/m);

    // The map opens at the pool's first listed block: the host range with the gateway.
    await page.locator('#grid [data-address="10.77.0.1"]').waitFor();
    assert.equal(await cellState(page, '10.77.0.1'), 'gateway-aux');
    assert.equal(await cellState(page, '10.77.0.2'), 'host-range');
    assert.equal(await cellState(page, '10.77.0.0'), 'outside');
    assert.equal(await page.locator('#grid .cell').count(), 256);

    // Each kind of address in its state (and colour), found by address.
    await goTo(page, conflict);
    assert.equal(await cellState(page, conflict), 'conflict');
    assert.equal(await page.locator('#cell-info [data-field="foreign MAC"]').textContent(), seen.mac);
    const red = await page
      .locator(`#grid [data-address="${conflict}"]`)
      .evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(red, 'rgb(224, 53, 43)');
    await goTo(page, cool);
    assert.equal(await cellState(page, cool), 'cooling');
    await goTo(page, parked);
    assert.equal(await cellState(page, parked), 'parked');
    assert.equal(await page.locator('#cell-info [data-field="endpoint name"]').textContent(), 'api-7');
    // Every held address, one block at a time.
    const byBlock = new Map<string, string[]>();
    for (const h of held)
      byBlock.set(h.address.split('.')[2] as string, [
        ...(byBlock.get(h.address.split('.')[2] as string) ?? []),
        h.address,
      ]);
    for (const addresses of byBlock.values()) {
      await goTo(page, addresses[0] as string);
      const states = await page.$$eval('#grid .cell', (cells) =>
        cells.map((c) => [c.getAttribute('data-address'), c.getAttribute('data-state')] as const),
      );
      const shown = new Map(states);
      for (const address of addresses) assert.equal(shown.get(address), 'held', address);
    }
    // The legend counts what the open block shows.
    const shownHeld = await page.locator('#grid .cell[data-state="held"]').count();
    assert.equal(await page.locator('#legend li[data-state="held"] .count').textContent(), String(shownHeld));

    // Search by container name; hovering a cell names its holder.
    const web7 = held.find((h) => h.name === 'web-7') as { address: string };
    await page.fill('#search', 'web-7');
    await page.click('#search-form button');
    await page.locator(`#grid [data-address="${web7.address}"].selected`).waitFor();
    assert.equal(await page.locator('#cell-info [data-field="container"]').textContent(), 'web-7');
    assert.equal(await page.locator('#cell-info [data-field="host"]').textContent(), 'h1');
    const db1 = held.find((h) => h.name === 'db-1') as { address: string };
    await goTo(page, db1.address);
    await page.hover(`#grid [data-address="${db1.address}"]`);
    assert.equal(await page.locator('#cell-info [data-field="host"]').textContent(), 'h2');
    assert.equal(await page.locator('#cell-info [data-field="endpoint name"]').textContent(), 'db-1');

    // Live: a new allocation shows up in the open block and in the counts without a reload.
    await page.locator('#live.on').waitFor();
    await page.evaluate(() => {
      (window as unknown as { loadedOnce: boolean }).loadedOnce = true;
    });
    const [next] = await h1.upcoming(poolId, 1);
    assert.ok(next);
    await goTo(page, next);
    assert.equal(await cellState(page, next), 'free');
    const added = bare(
      (await h1.requestAddress({ poolId, address: '', kind: 'container', endpointName: 'late-1' })).address,
    );
    await page.locator(`#grid [data-address="${added}"][data-state="held"]`).waitFor({ timeout: 15_000 });
    await page
      .locator(`#pools tr[data-pool="${POOL}"] .held:text-is("${held.length + 1}")`)
      .waitFor({ timeout: 15_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce), true);

    if (process.env.FLATNET_DASHBOARD_SCREENSHOT) {
      await page.hover(`#grid [data-address="${web7.address}"]`);
      await page.screenshot({ path: process.env.FLATNET_DASHBOARD_SCREENSHOT, fullPage: true });
    }
    assert.deepEqual(problems, []);
  },
);
