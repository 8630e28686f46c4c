import { FlatnetError } from '../errors.js';
import type { IpCommand } from './batch.js';
import { IpBatchError, type IpRunner } from './ip-runner.js';
import { assertIfName, type VethNames } from './names.js';

export interface VethSpec {
  names: VethNames;
  bridge: string;
  mtu: number;
  /** MAC of the container end; Docker keeps it when it moves the link into the sandbox. */
  mac: string;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The veth pair in two commands: create both ends (MAC, MTU), then host end into the bridge and up. */
export function vethCreateCommands(spec: VethSpec): IpCommand[] {
  const { host, container } = spec.names;
  assertIfName(host);
  assertIfName(container);
  assertIfName(spec.bridge, 'bridge name');
  const mac = spec.mac.toLowerCase();
  if (!MAC.test(mac)) throw new FlatnetError('invalid', `"${spec.mac}" is not a colon-form MAC address.`);
  if (!Number.isInteger(spec.mtu) || spec.mtu < 68 || spec.mtu > 65535) {
    throw new FlatnetError('invalid', `MTU ${spec.mtu} is out of range (68-65535).`);
  }
  const mtu = String(spec.mtu);
  return [
    ['link', 'add', 'name', host, 'mtu', mtu, 'type', 'veth', 'peer', 'name', container, 'address', mac, 'mtu', mtu],
    ['link', 'set', 'dev', host, 'master', spec.bridge, 'up'],
  ];
}

/** Whether ip's complaints are all of the "that link is not there" kind. */
export function onlyMissingLinkErrors(stderr: string): boolean {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .every((l) => /^Cannot find device /.test(l) || /^Command failed /.test(l));
}

/**
 * Removes the pair through its host end, which stays in this namespace wherever the container end is
 * (deleting one end removes both); a pair already gone is fine.
 */
export async function deleteVeth(ip: IpRunner, names: VethNames): Promise<void> {
  try {
    await ip.batch([['link', 'del', 'dev', names.host]], { session: true });
  } catch (err) {
    if (err instanceof IpBatchError && onlyMissingLinkErrors(err.stderr)) return;
    throw err;
  }
}

/**
 * Creates the pair with one ip spawn. A pair left by an earlier attempt for the same endpoint is replaced;
 * a failure leaves no link behind.
 */
export async function createVeth(ip: IpRunner, spec: VethSpec): Promise<void> {
  const commands = vethCreateCommands(spec);
  try {
    await ip.batch(commands, { session: true });
    return;
  } catch (err) {
    if (!(err instanceof IpBatchError)) throw err;
    if (err.completed > 0 || !/File exists/.test(err.stderr)) {
      await deleteVeth(ip, spec.names);
      throw new FlatnetError(
        'unavailable',
        `Could not create veth ${spec.names.host}: ${err.stderr.trim().split('\n')[0] ?? ''}`,
      );
    }
  }
  await deleteVeth(ip, spec.names);
  try {
    await ip.batch(commands, { session: true });
  } catch (err) {
    await deleteVeth(ip, spec.names);
    throw err;
  }
}
