import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpamAdminService } from '../../src/ipam/services/admin-service.js';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { ChangeReport } from '../../src/store/change-watch.js';
import { EtcdStores } from '../../src/store/etcd-stores.js';
import { etcdFixture } from '../harness/etcd-fixture.js';
import { missing } from '../harness/requirements.js';

/** The dashboard's etcd watch against a real etcd: an allocation names its block, a range change its pool. */
const skip = missing('etcd');
const logger = silentLogger();

const lab = etcdFixture(skip);

test(
  'the change watch reports the block of an allocation, a pool change as a whole, and host registrations',
  { skip },
  async () => {
    const prefix = `/w${Math.random().toString(36).slice(2, 8)}`;
    const stores = new EtcdStores(lab.etcd, prefix, logger);
    const admin = new IpamAdminService(stores.ipam, logger);
    await admin.addIpRange({ start: '10.66.3.1/16', end: '10.66.3.254/16' });
    const reports: ChangeReport[] = [];
    const watch = await stores.watchChanges((r) => reports.push(r), 50);
    const next = async (): Promise<ChangeReport> => {
      for (let i = 0; i < 500 && reports.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const r = reports.shift();
      assert.ok(r, 'a report came');
      return r;
    };
    try {
      const driver = new IpamDriverService(stores.ipam, 'h1', logger);
      const { poolId } = await driver.requestPool({
        addressSpace: 'FlatLocal',
        pool: '10.66.0.0/16',
        subPool: '',
        options: {},
        v6: false,
      });
      assert.deepEqual((await next()).pools.get('10.66.0.0/16'), 'pool', 'a claim changes the pool');
      await driver.requestAddress({ poolId, address: '', kind: 'container' });
      assert.deepEqual([...((await next()).pools.get('10.66.0.0/16') as Set<string>)], ['3']);
      const reg = stores.hosts.start({ hostId: 'h9', logger });
      await reg.ready;
      assert.equal((await next()).hosts, true);
      await reg.stop();
    } finally {
      await watch.stop();
    }
  },
);
