import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countersOf, countersSince, parseMetrics, sumMembers } from '../../bench/scale/etcd-metrics.js';
import { ETCD_LIMITS, extrapolate, fitPerHost, percentile, perHostPerMinute } from '../../bench/scale/figures.js';

/** An excerpt of etcd 3.4's /metrics, as one member serves it. */
const PAGE = `# HELP etcd_network_client_grpc_sent_bytes_total The total number of bytes sent to grpc clients.
# TYPE etcd_network_client_grpc_sent_bytes_total counter
etcd_network_client_grpc_sent_bytes_total 1.234e+06
etcd_network_client_grpc_received_bytes_total 5000
etcd_debugging_mvcc_keys_total 700
etcd_mvcc_db_total_size_in_bytes 2.097152e+06
etcd_mvcc_db_total_size_in_use_in_bytes 1048576
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 40
grpc_server_handled_total{grpc_code="Unavailable",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 2
grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 100
grpc_server_handled_total{grpc_code="OK",grpc_method="LeaseGrant",grpc_service="etcdserverpb.Lease",grpc_type="unary"} 3
grpc_server_handled_total{grpc_code="OK",grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 1
grpc_server_msg_received_total{grpc_method="LeaseKeepAlive",grpc_service="etcdserverpb.Lease",grpc_type="bidi_stream"} 50
grpc_server_msg_received_total{grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 100
go_memstats_alloc_bytes NaN
some_label_escape{path="a\\"b\\\\c"} 1
`;

describe('etcd /metrics parsing', () => {
  it('reads samples with their labels, escapes, exponents and NaN, and skips comments', () => {
    const samples = parseMetrics(PAGE);
    assert.equal(samples.length, 14);
    assert.equal(samples[0]?.value, 1_234_000);
    assert.deepEqual(samples.find((s) => s.name === 'some_label_escape')?.labels, { path: 'a"b\\c' });
    assert.ok(Number.isNaN(samples.find((s) => s.name === 'go_memstats_alloc_bytes')?.value));
  });

  it("counts a member's bytes and calls: every code of a method, unary calls plus stream messages", () => {
    const c = countersOf(parseMetrics(PAGE));
    assert.equal(c.sentBytes, 1_234_000);
    assert.equal(c.receivedBytes, 5000);
    assert.equal(c.range, 42);
    assert.equal(c.txn, 100);
    // 42 Range + 100 Txn + 3 LeaseGrant (unary handled) + 50 keep-alive messages; a stream's end is not a request.
    assert.equal(c.requests, 195);
    assert.equal(c.keys, 700);
    assert.equal(c.dbInUseBytes, 1_048_576);
  });

  it('adds counters over the members but takes the largest member for the gauges; a window subtracts counters only', () => {
    const one = countersOf(parseMetrics(PAGE));
    const other = { ...one, sentBytes: 1000, keys: 900, dbBytes: 10 };
    const cluster = sumMembers([one, other]);
    assert.equal(cluster.sentBytes, 1_235_000);
    assert.equal(cluster.txn, 200);
    assert.equal(cluster.keys, 900);
    assert.equal(cluster.dbBytes, 2_097_152);
    const later = { ...cluster, sentBytes: 2_000_000, txn: 260, keys: 950 };
    const since = countersSince(cluster, later);
    assert.equal(since.sentBytes, 765_000);
    assert.equal(since.txn, 60);
    assert.equal(since.keys, 950);
  });
});

describe('scale bench arithmetic', () => {
  it('takes nearest-rank percentiles of unsorted samples', () => {
    const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(xs, 50), 5);
    assert.equal(percentile(xs, 99), 10);
    assert.equal(percentile(xs, 0), 1);
    assert.equal(percentile([42], 99), 42);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it('turns a window count into a rate per host per minute', () => {
    assert.equal(perHostPerMinute(1200, 10, 30_000), 240);
  });

  it('fits per-host cost to what the cluster holds: flat cost gives b = 0, linear growth gives its slope', () => {
    const flat = fitPerHost(
      [
        { hosts: 10, held: 600, bytes: 5000, requests: 30 },
        { hosts: 100, held: 6000, bytes: 5000, requests: 30 },
      ],
      (p) => p.bytes,
    );
    assert.deepEqual(flat, { a: 5000, b: 0 });
    const growing = fitPerHost(
      [
        { hosts: 10, held: 600, bytes: 1000 + 600 * 200, requests: 0 },
        { hosts: 100, held: 6000, bytes: 1000 + 6000 * 200, requests: 0 },
      ],
      (p) => p.bytes,
    );
    assert.ok(Math.abs(growing.a - 1000) < 1e-6);
    assert.ok(Math.abs(growing.b - 200) < 1e-9);
  });

  it('extrapolates a fleet: own-state term scaled per host, cluster term at the fleet total, keys in proportion', () => {
    const fleet = extrapolate(
      {
        points: [
          { hosts: 10, held: 600, bytes: 6000, requests: 60 },
          { hosts: 100, held: 6000, bytes: 6000, requests: 60 },
        ],
        addressesPerHost: 60,
        keys: 6600,
        dbBytes: 6_600_000,
        held: 6000,
        bytesPerWrite: 700,
      },
      10_000,
      100,
    );
    // 60 requests/host/min at 60 addresses -> 100 at 100 addresses; x 10,000 hosts / 60 s.
    assert.ok(Math.abs(fleet.requestsPerSecond - (100 * 10_000) / 60) < 1e-6);
    assert.ok(Math.abs(fleet.bytesPerSecond - (10_000 * 10_000) / 60) < 1e-3);
    assert.ok(Math.abs(fleet.keys - 1.1e6) < 1e-6);
    assert.ok(Math.abs(fleet.dbBytes - 1.1e9) < 1e-3);
    assert.equal(fleet.bytesPerWrite, 700);
    assert.ok(fleet.dbBytes < ETCD_LIMITS.dbBytes);
  });
});
