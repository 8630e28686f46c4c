import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import type { EtcdSettings } from '../config/settings.js';
import { FlatnetError } from '../errors.js';

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new FlatnetError('invalid', `cannot read etcd ${what} ${path}: ${(err as Error).message}`);
  }
}

/** One etcd3 client per process; TLS and authentication come from the settings, never from code. */
export function createEtcdClient(s: EtcdSettings): Etcd3 {
  const options: IOptions = {
    hosts: s.etcdEndpoints,
    dialTimeout: s.etcdTimeoutMs,
    // Unary calls only: a deadline on the lease keep-alive stream would cut it every etcdTimeoutMs.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + s.etcdTimeoutMs }),
  };
  const wantsTls = s.etcdEndpoints.some((e) => e.startsWith('https://')) || s.etcdCaFile !== undefined;
  if (wantsTls) {
    options.credentials = {
      rootCertificate: s.etcdCaFile !== undefined ? readPem(s.etcdCaFile, 'CA file') : (undefined as unknown as Buffer),
      ...(s.etcdCertFile !== undefined && s.etcdKeyFile !== undefined
        ? { certChain: readPem(s.etcdCertFile, 'certificate file'), privateKey: readPem(s.etcdKeyFile, 'key file') }
        : {}),
    };
  }
  if (s.etcdUsername !== undefined && s.etcdPassword !== undefined) {
    options.auth = { username: s.etcdUsername, password: s.etcdPassword };
  }
  return new Etcd3(options);
}
