import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The sources, not the compiled output: the compiled test lives in dist/test/unit. */
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Module specifiers of a file's static and dynamic imports and re-exports. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'/gms)) out.push(m[1] as string);
  for (const m of text.matchAll(/import\(\s*'([^']+)'\s*\)/g)) out.push(m[1] as string);
  return out;
}

/** Imports of the files under `dir` that resolve into src/<target>/, as "file -> specifier". */
function importsInto(dir: string, accept: (resolved: string, spec: string) => boolean): string[] {
  const bad: string[] = [];
  for (const file of tsFiles(join(SRC, dir))) {
    for (const spec of importsOf(file)) {
      const resolved = spec.startsWith('.') ? relative(SRC, join(file, '..', spec)) : spec;
      if (!accept(resolved, spec)) bad.push(`${relative(SRC, file)} -> ${spec}`);
    }
  }
  return bad;
}

test('the scan sees imports (guards the checks below against a regex that matches nothing)', () => {
  assert.ok(importsOf(join(SRC, 'store/block-repository.ts')).some((s) => s.includes('ipam/ports.js')));
  assert.ok(importsOf(join(SRC, 'ipam/services/driver-service.ts')).length > 5);
});

test('store imports from ipam only its model and its ports', () => {
  const bad = importsInto(
    'store',
    (r) => !r.startsWith('ipam/') || r.startsWith('ipam/model/') || r === 'ipam/ports.js',
  );
  assert.deepEqual(bad, []);
});

test('ipam never imports etcd3 or the store', () => {
  const bad = importsInto('ipam', (r) => r !== 'etcd3' && !r.startsWith('etcd3/') && !r.startsWith('store/'));
  assert.deepEqual(bad, []);
});

test('net is pure parsing: no ipam, store, etcd, host networking', () => {
  const bad = importsInto('net', (r) => !/^(ipam|store|netdriver|hostnet|server|cli|api)\//.test(r) && r !== 'etcd3');
  assert.deepEqual(bad, []);
});

test('only store touches the etcd3 client', () => {
  const outside = ['agents', 'api', 'cli', 'dashboard', 'ipam', 'net', 'netdriver', 'server', 'util'].flatMap((d) =>
    importsInto(d, (r) => r !== 'etcd3'),
  );
  // types only: the test/bench convenience classes take a client the caller holds
  assert.deepEqual(
    outside.filter((l) => !l.startsWith('lab/etcd-ipam.ts')),
    [],
  );
});

test('the host agents are built only by the composition roots (server, CLI, dashboard)', () => {
  const lower = ['api', 'ipam', 'net', 'netdriver', 'hostnet', 'store', 'util', 'docker', 'config'];
  const bad = lower.flatMap((d) => importsInto(d, (r) => !r.startsWith('agents/') && !r.startsWith('server/')));
  assert.deepEqual(bad, []);
  // Agents never reach back up into the composition root or the plugin API.
  assert.deepEqual(
    importsInto('agents', (r) => !r.startsWith('server/') && !r.startsWith('api/') && !r.startsWith('cli/')),
    [],
  );
});

test('server/ holds the composition root and the socket only', () => {
  const files = tsFiles(join(SRC, 'server'))
    .map((f) => relative(join(SRC, 'server'), f))
    .sort();
  assert.deepEqual(files, [
    'drivers.ts',
    'host-lock.ts',
    'metrics-listener.ts',
    'production-drivers.ts',
    'run.ts',
    'server.ts',
    'unix-socket.ts',
  ]);
});
