import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { parser } from '@prometheus-io/lezer-promql';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IpamDriverService } from '../../src/ipam/services/driver-service.js';
import { ReleaseJournal } from '../../src/ipam/services/release-journal.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { silentLogger } from '../../src/observability/logger.js';
import { registry } from '../../src/observability/metrics.js';
import { recordReconcileRound } from '../../src/agents/ipam-healing.js';
import { appWith, dockerCall } from '../api/app-harness.js';
import { RecordingNetwork } from '../api/recording-drivers.js';
import { poolWithRange } from '../fakes/pools.js';
import { missing } from '../harness/requirements.js';
import { parseExposition } from './exposition.js';

/**
 * The shipped Grafana dashboard and Prometheus rules against the metrics flatnet exports: every metric and label an
 * expression names must be one a host or the cluster endpoint serves, and promtool must accept and pass the rules.
 */
const run = promisify(execFile);
const DIR = join(import.meta.dirname, '..', '..', '..', 'monitoring');
const DASHBOARD = join(DIR, 'flatnet-dashboard.json');
const RULES = join(DIR, 'flatnet-alerts.yml');
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];

/** Series name -> label names seen on its samples. */
type Known = Map<string, Set<string>>;
let known: Known;

/** Runs the host's metrics through their real code paths (plugin API over an in-memory IPAM, heal, journal). */
async function exerciseHost(): Promise<string> {
  const { stores } = await poolWithRange('10.1.0.1/24', '10.1.0.200');
  const app = appWith(new IpamDriverService(stores, 'h1', silentLogger()), new RecordingNetwork(), silentLogger());
  const pool = await dockerCall(app, 'IpamDriver.RequestPool', { AddressSpace: 'FlatLocal', Pool: '10.1.0.0/24' });
  const poolId = z.object({ PoolID: z.string() }).parse(pool.body).PoolID;
  const got = await dockerCall(app, 'IpamDriver.RequestAddress', { PoolID: poolId, Address: '', Options: null });
  const address = z.object({ Address: z.string() }).parse(got.body).Address.split('/')[0];
  await dockerCall(app, 'IpamDriver.ReleaseAddress', { PoolID: poolId, Address: address });
  const refused = await dockerCall(app, 'IpamDriver.RequestAddress', { PoolID: '10.9.0.0/24', Address: '' });
  assert.notEqual(refused.status, 200, 'an address of no pool is refused (an allocation failure)');

  const held = { address: '10.1.0.9', subnet: '10.1.0.0/24', poolId, since: new Date(0).toISOString() };
  recordReconcileRound({ plan: { free: [held], kept: [], skipped: [] }, freed: [] });

  let text: string | undefined;
  const journal = new ReleaseJournal({ load: async () => text, save: async (t) => void (text = t) }, silentLogger());
  await journal.add({ op: 'address', poolId, address: '10.1.0.9', at: new Date().toISOString() });
  await journal.drain(async () => undefined);
  return registry.metrics();
}

/** The cluster endpoint's registry over a fixed census (its reads over etcd: cluster-metrics.test.ts). */
function exerciseCluster(): Promise<string> {
  return new ClusterMetrics({
    pools: async () => [{ pool: '10.1.0.0/24', size: 200, records: 3, cooling: 1, parked: 1 }],
    holders: async () => ({ conflicts: new Map([['10.1.0.0/24', 1]]), heldByHost: new Map([['h2', 2]]) }),
    hosts: async () => [{ hostId: 'h2', alive: false }],
  }).metrics();
}

function collect(texts: string[]): Known {
  const out: Known = new Map();
  for (const text of texts) {
    for (const line of text.split('\n')) {
      const declared = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (declared) out.set(declared[1] as string, out.get(declared[1] as string) ?? new Set());
    }
    for (const s of parseExposition(text)) {
      const labels = out.get(s.name) ?? new Set();
      for (const l of Object.keys(s.labels)) labels.add(l);
      out.set(s.name, labels);
    }
  }
  return out;
}

/** Grafana's own variables in a range or step, as a literal PromQL duration. */
function withGrafanaMacros(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

interface Refs {
  metrics: { name: string; labels: string[] }[];
  /** Labels of by/without/on/ignoring/group_x clauses. */
  grouping: string[];
  errors: string[];
}

/** The metric names and labels a PromQL expression refers to, by Prometheus's own grammar (lezer-promql). */
function references(expr: string): Refs {
  const text = withGrafanaMacros(expr);
  const refs: Refs = { metrics: [], grouping: [], errors: [] };
  const cursor = parser.parse(text).cursor();
  do {
    const node = cursor.node;
    const slice = text.slice(node.from, node.to);
    if (node.type.isError) refs.errors.push(`syntax error at ${node.from}: "${text.slice(node.from, node.from + 20)}"`);
    else if (node.name === 'VectorSelector') {
      const name = node.getChild('Identifier');
      const labels = (node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []).map((m) => {
        const l = m.getChild('LabelName');
        return l ? text.slice(l.from, l.to) : '';
      });
      if (!name) refs.errors.push(`a selector without a metric name: ${slice}`);
      else refs.metrics.push({ name: text.slice(name.from, name.to), labels });
    } else if (node.name === 'GroupingLabels')
      for (const l of node.getChildren('LabelName')) refs.grouping.push(text.slice(l.from, l.to));
  } while (cursor.next());
  return refs;
}

/** What is wrong with one expression against the exported metrics ([] = nothing). */
function problems(where: string, expr: string): string[] {
  const refs = references(expr);
  const out = refs.errors.map((e) => `${where}: ${e}`);
  if (refs.metrics.length === 0) out.push(`${where}: names no metric: ${expr}`);
  const labelsHere = new Set(TARGET_LABELS);
  for (const m of refs.metrics) {
    const labels = known.get(m.name);
    if (!labels) {
      out.push(`${where}: unknown metric ${m.name}`);
      continue;
    }
    for (const l of labels) labelsHere.add(l);
    for (const l of m.labels)
      if (!labels.has(l) && !TARGET_LABELS.includes(l)) out.push(`${where}: ${m.name} has no label ${l}`);
  }
  for (const l of refs.grouping)
    if (!labelsHere.has(l)) out.push(`${where}: groups by ${l}, which none of its metrics has`);
  return out;
}

const panelSchema = z.object({
  title: z.string(),
  type: z.string(),
  id: z.number(),
  datasource: z.object({ type: z.literal('prometheus'), uid: z.literal('${datasource}') }).optional(),
  targets: z.array(z.object({ expr: z.string(), refId: z.string() })).default([]),
});
const dashboardSchema = z.object({
  uid: z.string(),
  title: z.string(),
  schemaVersion: z.number(),
  panels: z.array(panelSchema),
  templating: z.object({
    list: z.array(
      z.object({
        name: z.string(),
        type: z.string(),
        query: z.union([z.string(), z.object({ query: z.string() })]),
      }),
    ),
  }),
});
const rulesSchema = z.object({
  groups: z.array(
    z.object({
      name: z.string(),
      rules: z.array(
        z.object({
          alert: z.string(),
          expr: z.string(),
          for: z.string(),
          labels: z.object({ severity: z.enum(['critical', 'warning', 'info']) }),
          annotations: z.object({ summary: z.string().min(1), description: z.string().min(1) }),
        }),
      ),
    }),
  ),
});

before(async () => {
  known = collect([await exerciseHost(), await exerciseCluster()]);
});

test('the checker itself: finds names and labels, and refuses unknown ones and bad syntax', () => {
  const ok =
    'histogram_quantile(0.99, sum by (le, method) (rate(flatnet_plugin_call_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval])))';
  assert.deepEqual(problems('ok', ok), []);
  assert.deepEqual(problems('x', 'flatnet_no_such_thing > 0'), ['x: unknown metric flatnet_no_such_thing']);
  assert.deepEqual(problems('x', 'flatnet_etcd_up{pool="a"} == 0'), ['x: flatnet_etcd_up has no label pool']);
  assert.deepEqual(problems('x', 'sum by (nope) (flatnet_pool_size_addresses)'), [
    'x: groups by nope, which none of its metrics has',
  ]);
  assert.ok(problems('x', 'sum(flatnet_etcd_up').length > 0, 'a syntax error is reported');
  assert.ok(known.has('flatnet_pool_free_addresses') && known.has('flatnet_host_held_addresses'));
  assert.deepEqual([...(known.get('flatnet_host_held_addresses') ?? [])], ['pool']);
});

test('every dashboard expression and variable names exported metrics and labels', async () => {
  const dash = dashboardSchema.parse(JSON.parse(await readFile(DASHBOARD, 'utf8')));
  const found: string[] = [];
  const exprs = dash.panels.flatMap((p) =>
    p.targets.map((t, i) => ({ where: `panel "${p.title}" #${i}`, expr: t.expr })),
  );
  assert.ok(exprs.length >= 20, `the dashboard has its queries (${exprs.length})`);
  for (const { where, expr } of exprs) found.push(...problems(where, expr));
  for (const v of dash.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(q);
    if (!m) found.push(`variable ${v.name}: not label_values(metric, label): ${q}`);
    else if (!known.get(m[1] as string)?.has(m[2] as string) && !TARGET_LABELS.includes(m[2] as string))
      found.push(`variable ${v.name}: ${m[1]} has no label ${m[2]}`);
  }
  assert.deepEqual(found, []);
  // Importable as is: every query panel reads the datasource variable, ids are unique.
  assert.ok(dash.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'));
  for (const p of dash.panels.filter((x) => x.type !== 'row')) assert.ok(p.datasource, `panel ${p.title} datasource`);
  assert.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length);
  const wanted = [
    'flatnet_pool_size_addresses',
    'flatnet_pool_free_addresses',
    'flatnet_allocations_total',
    'flatnet_allocation_failures_total',
    'flatnet_plugin_call_duration_seconds_bucket',
    'flatnet_etcd_txn_duration_seconds_bucket',
    'flatnet_etcd_txn_retries_total',
    'flatnet_reconcile_freed_total',
    'flatnet_release_journal_backlog',
    'flatnet_pool_conflict_addresses',
    'flatnet_hosts',
  ];
  const used = new Set(exprs.flatMap((e) => references(e.expr).metrics.map((m) => m.name)));
  assert.deepEqual(
    wanted.filter((w) => !used.has(w)),
    [],
    'the dashboard shows what the issue asks',
  );
});

test('every alert rule names exported metrics and labels, with for, severity, summary and description', async () => {
  const rules = rulesSchema.parse(parseYaml(await readFile(RULES, 'utf8'))).groups.flatMap((g) => g.rules);
  const found = rules.flatMap((r) => problems(`alert ${r.alert}`, r.expr));
  assert.deepEqual(found, []);
  assert.deepEqual(
    rules.map((r) => r.alert),
    [
      'FlatnetPoolNearlyFull',
      'FlatnetAddressConflicts',
      'FlatnetEtcdUnreachable',
      'FlatnetReleaseJournalNotDraining',
      'FlatnetReconcileFailing',
      'FlatnetReconcileSkipsPools',
      'FlatnetHostDownHoldingAddresses',
    ],
  );
});

test('promtool accepts the rules and their unit tests pass', { skip: missing('promtool') }, async () => {
  const check = await run('promtool', ['check', 'rules', RULES]);
  assert.match(check.stdout, /SUCCESS: 7 rules found/);
  const unit = await run('promtool', ['test', 'rules', 'flatnet-alerts.test.yml'], { cwd: DIR });
  assert.match(unit.stdout, /SUCCESS/);
});
