import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { RequestListener } from 'node:http';
import { Etcd3 } from 'etcd3';
import { EtcdIpamAdmin } from '../../src/lab/etcd-ipam.js';
import { EtcdIpamDriver } from '../../src/lab/etcd-ipam.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { missing } from '../harness/requirements.js';
import { appWith, dockerCall, NET_ID } from './app-harness.js';
import { RecordingNetwork } from './recording-drivers.js';

/**
 * The IPAM half of the API against the real EtcdIpamDriver and a real etcd: Docker's call sequences over
 * the wire, checked for what Docker relies on (checklist 7, 8, 11-16, 29).
 */
const skip = missing('etcd');
const run = Math.random().toString(36).slice(2, 8);
const octet = 100 + Math.floor(Math.random() * 100);
const logger = silentLogger();

let etcd: EtcdCluster;
let client: Etcd3;
let app: RequestListener;
let admin: EtcdIpamAdmin;

function ipOf(cidr: unknown): string {
  return String(cidr).split('/')[0] as string;
}

function toInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, len] = cidr.split('/') as [string, string];
  const mask = Number(len) === 0 ? 0 : (~0 << (32 - Number(len))) >>> 0;
  return (toInt(ip) & mask) >>> 0 === (toInt(net) & mask) >>> 0;
}

function requestPool(body: Record<string, unknown>) {
  return dockerCall(app, 'IpamDriver.RequestPool', {
    AddressSpace: 'FlatLocal',
    Pool: '',
    SubPool: '',
    Options: null,
    V6: false,
    ...body,
  });
}

function requestAddress(poolId: string, address = '', options: Record<string, string> | null = null) {
  return dockerCall(app, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: address, Options: options });
}

/** flatnet never hands out LAN addresses nobody gave it: a subnet needs an ip-range (or --ip-range). */
async function configured(subnetBase: string, len = 24): Promise<string> {
  const v6 = subnetBase.includes(':');
  await admin.addIpRange(
    v6
      ? { start: `${subnetBase}10/${len}`, end: `${subnetBase}ff/${len}` }
      : { start: `${subnetBase}10/${len}`, end: `${subnetBase}250/${len}` },
  );
  return `${subnetBase}0/${len}`.replace(/::0\//, '::/');
}

/** Docker sends CreateNetwork before any container request: from then on a bare --ip is a container's. */
async function createNetwork(pool: string): Promise<void> {
  await dockerCall(app, 'NetworkDriver.CreateNetwork', {
    NetworkID: NET_ID,
    Options: null,
    IPv4Data: [{ AddressSpace: 'FlatLocal', Pool: pool }],
    IPv6Data: [],
  }).expect(200);
}

const GATEWAY = { RequestAddressType: 'com.docker.network.gateway' };

describe('IPAM calls over the API with the etcd driver', { skip }, () => {
  before(async () => {
    etcd = await startEtcdCluster({ members: 1 });
    client = new Etcd3({ hosts: etcd.endpoints });
    const prefix = `/flatnet-apitest-${run}`;
    const ipam = new EtcdIpamDriver({ etcd: client, prefix, hostId: `api-${run}`, logger });
    admin = new EtcdIpamAdmin({ etcd: client, prefix, logger });
    app = appWith(ipam, new RecordingNetwork(), logger);
  });
  after(async () => {
    client?.close();
    await etcd?.stop();
  });

  test('7: RequestPool with empty Pool picks a configured pool: CIDR, PoolID, Data map or null', async () => {
    await admin.addIpRange({ start: `10.${octet}.1.10/24`, end: `10.${octet}.1.200/24` });
    const res = await requestPool({}).expect(200);
    assert.equal(res.body.Pool, `10.${octet}.1.0/24`);
    assert.equal(typeof res.body.PoolID, 'string');
    assert.ok(res.body.PoolID.length > 0);
    assert.ok(res.body.Data === null || typeof res.body.Data === 'object');
  });

  test('8: RequestPool with an explicit Pool echoes it exactly', async () => {
    const res = await requestPool({ Pool: await configured(`10.${octet}.2.`) }).expect(200);
    assert.equal(res.body.Pool, `10.${octet}.2.0/24`);
  });

  test('11: empty Pool with a SubPool fails; V6 yields an IPv6 pool', async () => {
    const bad = await requestPool({ SubPool: `10.${octet}.3.0/25` }).expect(400);
    assert.ok(String(bad.body.Err).length > 0);
    await configured(`fd00:${octet}::`, 64);
    const v6 = await requestPool({ V6: true }).expect(200);
    assert.ok(isIPv6(ipOf(v6.body.Pool)));
    assert.equal(v6.body.Pool, `fd00:${octet}::/64`);
    const wrongFamily = await requestPool({ Pool: `10.${octet}.4.0/24`, V6: true });
    assert.notEqual(wrongFamily.status, 200);
  });

  test('12-15: gateway in Pool with its prefix, aux outside SubPool accepted, containers only from SubPool', async () => {
    const pool = `10.${octet}.5.0/24`;
    const subPool = `10.${octet}.5.128/26`;
    const p = await requestPool({ Pool: pool, SubPool: subPool }).expect(200);
    const poolId = String(p.body.PoolID);
    const gw = await requestAddress(poolId, '', GATEWAY).expect(200);
    assert.match(gw.body.Address, /\/24$/);
    assert.ok(inCidr(ipOf(gw.body.Address), pool));
    const auxOutside = await requestAddress(poolId, `10.${octet}.5.5`).expect(200);
    assert.equal(auxOutside.body.Address, `10.${octet}.5.5/24`);
    const auxInside = await requestAddress(poolId, `10.${octet}.5.130`).expect(200);
    assert.equal(auxInside.body.Address, `10.${octet}.5.130/24`);
    await dockerCall(app, 'NetworkDriver.CreateNetwork', {
      NetworkID: NET_ID,
      Options: null,
      IPv4Data: [
        {
          AddressSpace: 'FlatLocal',
          Pool: pool,
          Gateway: gw.body.Address,
          AuxAddresses: { a: `10.${octet}.5.5/24`, b: `10.${octet}.5.130/24` },
        },
      ],
      IPv6Data: [],
    }).expect(200);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const c = await requestAddress(poolId).expect(200);
      const ip = ipOf(c.body.Address);
      assert.match(c.body.Address, /\/24$/);
      assert.ok(inCidr(ip, subPool), `${ip} is outside ${subPool}`);
      assert.ok(![ipOf(gw.body.Address), `10.${octet}.5.5`, `10.${octet}.5.130`].includes(ip), `${ip} is reserved`);
      assert.ok(!seen.has(ip));
      seen.add(ip);
    }
  });

  test('13: a preferred free address is returned exactly, a taken one fails', async () => {
    const p = await requestPool({ Pool: await configured(`10.${octet}.6.`) }).expect(200);
    const poolId = String(p.body.PoolID);
    await createNetwork(String(p.body.Pool));
    const want = `10.${octet}.6.77`;
    const got = await requestAddress(poolId, want).expect(200);
    assert.equal(got.body.Address, `${want}/24`);
    const again = await requestAddress(poolId, want);
    assert.notEqual(again.status, 200);
    assert.ok(String(again.body.Err).length > 0);
  });

  test('16: releasing unknown addresses and PoolIDs succeeds; a released subnet can be requested again', async () => {
    const pool = await configured(`10.${octet}.7.`);
    const p = await requestPool({ Pool: pool }).expect(200);
    const poolId = String(p.body.PoolID);
    assert.deepEqual(
      (await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: `10.${octet}.7.99` }).expect(200))
        .body,
      {},
    );
    const a = await requestAddress(poolId).expect(200);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: ipOf(a.body.Address) }).expect(200);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: ipOf(a.body.Address) }).expect(200);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', {
      PoolID: `10.${octet}.250.0/24`,
      Address: `10.${octet}.250.9`,
    }).expect(200);
    await dockerCall(app, 'IpamDriver.ReleasePool', { PoolID: `10.${octet}.251.0/24` }).expect(200);
    await dockerCall(app, 'IpamDriver.ReleasePool', { PoolID: poolId }).expect(200);
    await dockerCall(app, 'IpamDriver.ReleasePool', { PoolID: poolId }).expect(200);
    const back = await requestPool({ Pool: pool }).expect(200);
    assert.equal(back.body.Pool, pool);
  });

  test('29: fifty concurrent RequestAddress calls on one pool give fifty distinct addresses', async () => {
    const p = await requestPool({ Pool: await configured(`10.${octet}.8.`) }).expect(200);
    const poolId = String(p.body.PoolID);
    const replies = await Promise.all(Array.from({ length: 50 }, () => requestAddress(poolId)));
    for (const r of replies) assert.equal(r.status, 200, JSON.stringify(r.body));
    const ips = replies.map((r) => ipOf(r.body.Address));
    assert.ok(ips.every((ip) => isIPv4(ip)));
    assert.equal(new Set(ips).size, 50);
  });

  test('aux or container: under another network driver a --ip right after network create is never shared; declared aux addresses are', async () => {
    const other = appWith(
      new EtcdIpamDriver({ etcd: client, prefix: `/flatnet-apitest-${run}`, hostId: `api2-${run}`, logger }),
      new RecordingNetwork(),
      logger,
    );
    const on = (a: RequestListener) => ({
      pool: async (pool: string, options: Record<string, string> | null = null) =>
        String(
          (
            await dockerCall(a, 'IpamDriver.RequestPool', {
              AddressSpace: 'FlatLocal',
              Pool: pool,
              SubPool: '',
              Options: options,
              V6: false,
            }).expect(200)
          ).body.PoolID,
        ),
      address: (poolId: string, address = '', options: Record<string, string> | null = null) =>
        dockerCall(a, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: address, Options: options }),
    });
    const [a, b] = [on(app), on(other)];

    // flatnet as IPAM only (macvlan, ipvlan, bridge): no CreateNetwork; each host's first container asks for one --ip
    const ipamOnly = await configured(`10.${octet}.10.`);
    const [pa, pb] = [await a.pool(ipamOnly), await b.pool(ipamOnly)];
    await a.address(pa, '', GATEWAY).expect(200);
    await b.address(pb, '', GATEWAY).expect(200);
    const ip = `10.${octet}.10.40`;
    await a.address(pa, ip).expect(200);
    const second = await b.address(pb, ip);
    assert.notEqual(second.status, 200, 'the other host does not get the same address');
    assert.match(
      String(second.body.Err),
      /held by another host and not declared as an aux address.*--ipam-opt aux-addresses=/,
    );
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: pa, Address: ip }).expect(200);
    await b.address(pb, ip).expect(200);

    // the flatnet driver: CreateNetwork names the --aux-address, and then other hosts share it
    const flat = await configured(`10.${octet}.11.`);
    const aux = `10.${octet}.11.5`;
    const fa = await a.pool(flat);
    await a.address(fa, aux).expect(200);
    await dockerCall(app, 'NetworkDriver.CreateNetwork', {
      NetworkID: NET_ID,
      Options: null,
      IPv4Data: [{ AddressSpace: 'FlatLocal', Pool: flat, AuxAddresses: { router: `${aux}/24` } }],
      IPv6Data: [],
    }).expect(200);
    const fb = await b.pool(flat);
    await b.address(fb, aux).expect(200);
    const shared = (await admin.poolSummaries())
      .find((p) => p.subnet === flat)
      ?.reservations.find((r) => r.address === aux);
    assert.deepEqual(shared?.hostIds.sort(), [`api-${run}`, `api2-${run}`].sort());

    // declared on RequestPool (--ipam-opt aux-addresses): exactly those are aux, any other bare address is a container's
    const declared = await configured(`10.${octet}.12.`);
    const opt = { 'aux-addresses': `10.${octet}.12.5,10.${octet}.12.6` };
    const [da, db] = [await a.pool(declared, opt), await b.pool(declared, opt)];
    await a.address(da, `10.${octet}.12.5`).expect(200);
    await b.address(db, `10.${octet}.12.5`).expect(200);
    await a.address(da, `10.${octet}.12.44`).expect(200);
    const held = await admin.listAssignments({ subnet: declared });
    assert.deepEqual(
      held.map((h) => [h.address, h.hostId]),
      [[`10.${octet}.12.44`, `api-${run}`]],
      'the undeclared one is a container address',
    );
    const taken = await b.address(db, `10.${octet}.12.44`);
    assert.notEqual(taken.status, 200);
    assert.match(String(taken.body.Err), /already in use/);
    const bad = await dockerCall(app, 'IpamDriver.RequestPool', {
      AddressSpace: 'FlatLocal',
      Pool: declared,
      SubPool: '',
      Options: { 'aux-addresses': '10.1.2.x' },
      V6: false,
    });
    assert.notEqual(bad.status, 200);
    assert.match(String(bad.body.Err), /aux-addresses: "10\.1\.2\.x" is not an IP address/);
  });

  test('31: malformed requests change nothing: an address stays taken, a bad PoolID format is a 400', async () => {
    const p = await requestPool({ Pool: await configured(`10.${octet}.9.`) }).expect(200);
    const poolId = String(p.body.PoolID);
    await createNetwork(String(p.body.Pool));
    const a = await requestAddress(poolId).expect(200);
    const ip = ipOf(a.body.Address);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { raw: '' }).expect(400);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: 7 }).expect(400);
    await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId }).expect(400);
    await dockerCall(app, 'IpamDriver.ReleasePool', [poolId]).expect(400);
    const unknownFormat = await requestAddress('not-a-pool-id').expect(400);
    assert.ok(String(unknownFormat.body.Err).length > 0);
    await dockerCall(app, 'IpamDriver.ReleasePool', { PoolID: 'not|a|pool' }).expect(400);
    const still = await requestAddress(poolId, ip);
    assert.notEqual(still.status, 200, `${ip} became free after malformed calls`);
    const pools = await admin.poolSummaries();
    assert.ok(pools.some((s) => s.subnet === `10.${octet}.9.0/24` && s.used >= 1));
  });
});
