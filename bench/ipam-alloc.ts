/**
 * Prints allocation latency (p50 of sequential RequestAddress) for a /8 vs a /24 pool, and for a /16 pool
 * that is empty vs 99.9% full (filled by writing bitmap blocks and summary hints directly).
 */
import { performance } from 'node:perf_hooks';
import { parseSubnet } from '../src/net/address.js';
import { withBit } from '../src/ipam/core/bitmap.js';
import { emptyBitmap } from '../src/ipam/model/block.js';
import { EtcdIpamAdmin, EtcdIpamDriver } from '../src/lab/etcd-ipam.js';
import { startEtcdCluster } from '../src/lab/etcd-cluster.js';
import { silentLogger } from '../src/observability/logger.js';
import { EtcdStores } from '../src/store/etcd-stores.js';
import { testEtcdClient } from '../test/harness/etcd-client.js';

const cluster = await startEtcdCluster({ members: 1 });
const etcd = testEtcdClient(cluster.endpoints);
const logger = silentLogger();

async function p50(
  prefix: string,
  subnet: string,
  first: string,
  last: string,
  n: number,
  fill?: (p: string) => Promise<void>,
): Promise<number> {
  await new EtcdIpamAdmin({ etcd, prefix, logger }).addIpRange({
    start: `${first}/${subnet.split('/')[1]}`,
    end: last,
  });
  if (fill) await fill(prefix);
  const d = new EtcdIpamDriver({ etcd, prefix, hostId: 'bench', logger });
  const { poolId } = await d.requestPool({
    addressSpace: 'FlatLocal',
    pool: subnet,
    subPool: '',
    options: {},
    v6: false,
  });
  await d.requestAddress({ poolId, address: '', kind: 'container' }); // warm the cursor
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await d.requestAddress({ poolId, address: '', kind: 'container' });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

/** Fills a /16 except 5 free addresses in each of 13 blocks (65 free = 0.1%), with matching summary bits. */
async function fill16(prefix: string): Promise<void> {
  const subnet = parseSubnet('10.77.0.0/16');
  const store = new EtcdStores(etcd, prefix, logger).ipam.blocks;
  let full = emptyBitmap();
  for (let i = 0; i < 256; i++) full = withBit(full, i, true);
  const blocks = new Map<bigint, Uint8Array>();
  let level1 = emptyBitmap();
  for (let b = 0; b < 256; b++) {
    let bits = full;
    if (b % 20 === 7) for (let k = 0; k < 5; k++) bits = withBit(bits, 10 + k * 40, false);
    else level1 = withBit(level1, b, true);
    blocks.set(BigInt(b), bits);
  }
  await store.writeBlocks(subnet, blocks, new Map([['1:0', level1]]));
}

try {
  const r = (x: number) => x.toFixed(2);
  const a24 = await p50('/bench-a24', '10.66.0.0/24', '10.66.0.1', '10.66.0.254', 200);
  const a8 = await p50('/bench-a8', '10.0.0.0/8', '10.0.0.1', '10.255.255.254', 200);
  process.stdout.write(`allocation p50: /24 ${r(a24)} ms, /8 ${r(a8)} ms, ratio ${(a8 / a24).toFixed(2)}\n`);
  const empty = await p50('/bench-e16', '10.77.0.0/16', '10.77.0.1', '10.77.255.254', 60);
  const full = await p50('/bench-f16', '10.77.0.0/16', '10.77.0.1', '10.77.255.254', 60, fill16);
  process.stdout.write(
    `allocation p50: /16 empty ${r(empty)} ms, /16 99.9% full ${r(full)} ms, ratio ${(full / empty).toFixed(2)}\n`,
  );
} finally {
  etcd.close();
  await cluster.stop();
}
