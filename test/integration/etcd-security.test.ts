import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startEtcdCluster, type EtcdCluster } from '../../src/lab/etcd-cluster.js';
import { assertOneLineError, runFlatnet, type CliResult } from '../harness/cli-runner.js';
import { startFlatnetServer } from '../harness/flatnet-server.js';
import { missing } from '../harness/requirements.js';

const execFileP = promisify(execFile);

const skip = missing('etcd', 'openssl');

const PASSWORD = `pw-${Math.random().toString(36).slice(2, 10)}-secret`;
let dir = '';
let cluster: EtcdCluster | undefined;
const files = { ca: '', cert: '', key: '', serverCert: '', serverKey: '' };

async function openssl(args: string[]): Promise<void> {
  await execFileP('openssl', args, { cwd: dir });
}

/** A CA, a server cert for 127.0.0.1 and a client cert whose CN is no etcd user (so only the password grants access). */
async function makeCertificates(): Promise<void> {
  const ext = join(dir, 'server.ext');
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  const clientExt = join(dir, 'client.ext');
  await writeFile(clientExt, 'extendedKeyUsage=clientAuth\n');
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=flatnet-test-ca',
  ]);
  for (const [name, extFile] of [
    ['server', ext],
    ['client', clientExt],
  ] as const) {
    await openssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=flatnet-test-${name}`,
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      extFile,
    ]);
  }
  Object.assign(files, {
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'client.pem'),
    key: join(dir, 'client.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
  });
}

function flatnet(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runFlatnet(args, { env: { PATH: process.env.PATH ?? '', ...env } });
}

const endpoint = (): string => cluster?.endpoints[0] ?? '';
const tlsFlags = (): string[] => [
  '--etcd-endpoints',
  endpoint(),
  '--etcd-ca-file',
  files.ca,
  '--etcd-cert-file',
  files.cert,
  '--etcd-key-file',
  files.key,
  '--etcd-timeout-ms',
  '3000',
];
const prefix = `/sec-${Math.random().toString(36).slice(2, 8)}`;
const authEnv = { FLATNET_ETCD_USERNAME: 'root', FLATNET_ETCD_PASSWORD: PASSWORD, FLATNET_ETCD_PREFIX: prefix };

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flatnet-tls-'));
  await makeCertificates();
  cluster = await startEtcdCluster({
    tls: { caFile: files.ca, certFile: files.serverCert, keyFile: files.serverKey, clientCertAuth: true },
  });
  const ctl = ['--endpoints', endpoint(), '--cacert', files.ca, '--cert', files.cert, '--key', files.key];
  const env = { ...process.env, ETCDCTL_API: '3' };
  await execFileP('etcdctl', [...ctl, 'user', 'add', `root:${PASSWORD}`], { env });
  await execFileP('etcdctl', [...ctl, 'auth', 'enable'], { env });
});

after(async () => {
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('with TLS client certificates and the password from the environment, CLI commands work', { skip }, async () => {
  const add = await flatnet(
    ['ip-range', 'add', '--ip-start', '192.168.50.100/24', '--ip-end', '192.168.50.150/24', ...tlsFlags()],
    authEnv,
  );
  assert.equal(add.code, 0, add.stderr);
  const list = await flatnet(['ip-range', 'list', '--json', ...tlsFlags()], authEnv);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /192\.168\.50\.100/);
  for (const r of [add, list]) assert.equal(`${r.stdout}${r.stderr}`.includes(PASSWORD), false);
});

test('a wrong password is one line, non-zero, and changes nothing', { skip }, async () => {
  const r = await flatnet(
    ['ip-range', 'add', '--ip-start', '192.168.51.10/24', '--ip-end', '192.168.51.20/24', ...tlsFlags()],
    {
      ...authEnv,
      FLATNET_ETCD_PASSWORD: 'not-the-password',
    },
  );
  assertOneLineError(r, /credentials|authentication/i);
  assert.equal(r.stderr.includes('not-the-password'), false);
  const list = await flatnet(['ip-range', 'list', '--json', ...tlsFlags()], authEnv);
  assert.equal(list.stdout.includes('192.168.51.'), false);
});

test('no password at all is refused (the client certificate alone grants nothing)', { skip }, async () => {
  const r = await flatnet(['ip-range', 'list', ...tlsFlags()], { FLATNET_ETCD_PREFIX: prefix });
  assertOneLineError(r, /etcd/);
});

test('without TLS, or without the client certificate, the CLI fails clearly', { skip }, async () => {
  const plain = await flatnet(
    ['ip-range', 'list', '--etcd-endpoints', endpoint().replace('https://', 'http://'), '--etcd-timeout-ms', '2000'],
    authEnv,
  );
  assertOneLineError(plain, /etcd/);
  const noCert = await flatnet(
    ['ip-range', 'list', '--etcd-endpoints', endpoint(), '--etcd-ca-file', files.ca, '--etcd-timeout-ms', '2000'],
    authEnv,
  );
  assertOneLineError(noCert, /etcd/);
  const badCa = await flatnet(['ip-range', 'list', ...tlsFlags(), '--etcd-ca-file', join(dir, 'missing.pem')], authEnv);
  assertOneLineError(badCa, /CA file/);
  assert.equal(badCa.code, 2);
});

test('--etcd-password works but warns, and is never echoed', { skip }, async () => {
  const r = await flatnet(['ip-range', 'list', ...tlsFlags(), '--etcd-username', 'root', '--etcd-password', PASSWORD], {
    FLATNET_ETCD_PREFIX: prefix,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /visible .* ps/);
  assert.equal(`${r.stdout}${r.stderr}`.includes(PASSWORD), false);
});

test('the server at debug level never logs the password', { skip }, async () => {
  const server = await startFlatnetServer({
    socket: join(dir, 'flatnet.sock'),
    args: ['--log-level', 'debug', '--state-dir', join(dir, 'state'), '--host-id', 'sec-h1', ...tlsFlags()],
    env: { PATH: process.env.PATH ?? '', ...authEnv },
  });
  try {
    // let the host registration and any etcd traffic happen and be logged
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await server.stop();
  }
  const output = server.output();
  assert.ok(output.length > 0, 'the server logged something at debug level');
  assert.match(output, /"etcdPassword":"<redacted>"/, 'the settings, password field included, were logged, redacted');
  assert.equal(output.includes(PASSWORD), false, 'the password is not in the server output');
});
