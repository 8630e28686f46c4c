import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { DockerEngineApi } from '../../src/docker/engine-api.js';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { OwnerService } from '../../src/ipam/services/owner-service.js';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EndpointOwners } from '../../src/agents/endpoint-owners.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { missing } from '../harness/requirements.js';
import { until } from '../harness/until.js';

/**
 * Owner records in real etcd: the endpoint and network written after CreateEndpoint, the container id and name
 * after Join once Docker's API lists the endpoint (it does so only after Join returns), and nothing blocking or
 * breaking when Docker's API never answers. Docker's API is played by a Unix-socket HTTP server that answers
 * GET /networks/<id> in the shape dockerd 20.10-28 sends (test/docker/engine-api.test.ts checks that shape
 * against a real dockerd).
 */
const skip = missing('etcd');
const suffix = Math.random().toString(36).slice(2, 8);
const NET = 'a'.repeat(64);
const EP = 'b'.repeat(64);
const CID = 'c'.repeat(64);

let etcd: EtcdCluster;
let client: Etcd3;
let dir: string;
const servers: Server[] = [];

/** dockerd's network inspect; the endpoint shows up after `registeredAfter` requests; `hang` never answers. */
async function dockerApi(
  socketPath: string,
  o: { registeredAfter: number; address: string; hang?: boolean },
): Promise<{ calls: () => number }> {
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    if (o.hang) return;
    if (req.url !== `/networks/${NET}`) {
      res.writeHead(404).end('{"message":"not found"}');
      return;
    }
    const containers =
      calls > o.registeredAfter
        ? {
            [CID]: {
              Name: 'web-1',
              EndpointID: EP,
              MacAddress: '02:42:0a:00:00:05',
              IPv4Address: `${o.address}/24`,
              IPv6Address: '',
            },
          }
        : {};
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ Name: 'lan', Id: NET, Containers: containers }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { calls: () => calls };
}

before(async () => {
  if (skip) return;
  etcd = await startEtcdCluster({ members: 1 });
  client = new Etcd3({ hosts: etcd.endpoints });
  dir = await mkdtemp(join(tmpdir(), 'flatnet-owners-'));
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  client?.close();
  await etcd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setup(host: string, prefix: string) {
  const stores = new EtcdStores(client, prefix, silentLogger());
  const driver = new IpamDriverService(stores.ipam, host, silentLogger());
  const admin = new IpamAdminService(stores.ipam, silentLogger());
  const pool = await driver.requestPool({
    addressSpace: 'FlatLocal',
    pool: '10.77.0.0/24',
    subPool: '10.77.0.128/25',
    options: {},
    v6: false,
  });
  const cidr = (await driver.requestAddress({ poolId: pool.poolId, address: '', kind: 'container' })).address;
  return { stores, admin, cidr, address: cidr.split('/')[0] as string };
}

test(
  'endpoint after CreateEndpoint, container after Join once Docker lists it; repeats change nothing',
  { skip },
  async () => {
    const host = `own-${suffix}`;
    const { stores, admin, cidr, address } = await setup(host, `/flatnet-owners-${suffix}`);
    const socketPath = join(dir, 'docker.sock');
    const api = await dockerApi(socketPath, { registeredAfter: 1, address });
    const owners = new EndpointOwners({
      owners: new OwnerService(stores.ipam.pools, stores.ipam.addresses, host),
      docker: new DockerEngineApi({ socketPath, timeoutMs: 500 }),
      logger: silentLogger(),
      joinDelaysMs: [10, 100, 200],
      createDelaysMs: [10],
    });
    owners.created({ networkId: NET, endpointId: EP, addresses: [cidr, ''] });
    const withEndpoint = await until('the endpoint in the record', async () =>
      (await admin.listAssignments()).find((a) => a.endpointId === EP),
    );
    assert.equal(withEndpoint.networkId, NET);
    owners.joined(NET, EP);
    const withContainer = await until('the container in the record', async () =>
      (await admin.listAssignments()).find((a) => a.containerName),
    );
    assert.deepEqual(
      [withContainer.address, withContainer.containerId, withContainer.containerName, withContainer.endpointId],
      [address, CID, 'web-1', EP],
    );
    assert.ok(api.calls() >= 2, 'the first look did not list the endpoint yet: retried');
    const key = `/flatnet-owners-${suffix}/ipam/v1/pool/10.77.0.0_24/addr/${address}`;
    const rev = (await client.get(key).exec()).kvs[0]?.mod_revision;
    owners.created({ networkId: NET, endpointId: EP, addresses: [cidr] });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await client.get(key).exec()).kvs[0]?.mod_revision, rev, 'a repeat writes nothing');
    await owners.close();
  },
);

test(
  "Docker's API hanging: the hook returns at once, close() does not wait for Docker, the record keeps the endpoint",
  { skip },
  async () => {
    const host = `own2-${suffix}`;
    const { stores, admin, cidr } = await setup(host, `/flatnet-owners2-${suffix}`);
    const socketPath = join(dir, 'hang.sock');
    await dockerApi(socketPath, { registeredAfter: 0, address: '', hang: true });
    const owners = new EndpointOwners({
      owners: new OwnerService(stores.ipam.pools, stores.ipam.addresses, host),
      docker: new DockerEngineApi({ socketPath, timeoutMs: 300 }),
      logger: silentLogger(),
      joinDelaysMs: [0, 50],
    });
    const t0 = process.hrtime.bigint();
    owners.created({ networkId: NET, endpointId: EP, addresses: [cidr] });
    owners.joined(NET, EP);
    assert.ok(process.hrtime.bigint() - t0 < 50_000_000n, 'the hook only schedules');
    await until('the endpoint in the record', async () =>
      (await admin.listAssignments()).find((a) => a.endpointId === EP),
    );
    await new Promise((r) => setTimeout(r, 800));
    await owners.close();
    const [rec] = await admin.listAssignments();
    assert.equal(rec?.containerName, undefined);
    assert.equal(rec?.endpointId, EP);
  },
);
