import { randomBytes } from 'node:crypto';
import { execArgs } from '../../src/hostnet/exec.js';
import { sh } from './sh.js';

export interface BridgeNetns {
  /** The namespace's name under /run/netns. */
  ns: string;
  /** `ip -n NS ARGS`; rejects with ip's message on failure. */
  ip(args: readonly string[]): Promise<string>;
  remove(): Promise<void>;
}

/**
 * A namespace of the test's own holding what a finished takeover leaves: NIC nic0 (a veth whose peer stays
 * in the namespace) enslaved to br0, `address` on br0, both up. For doctor and `flatnet bridge restore`.
 */
export async function makeBridgeNetns(tag: string, address: string): Promise<BridgeNetns> {
  const ns = `${tag}-${randomBytes(3).toString('hex')}`;
  const ip = (args: readonly string[]): Promise<string> => sh('ip', ['-n', ns, ...args]);
  await sh('ip', ['netns', 'add', ns]);
  const fixture: BridgeNetns = {
    ns,
    ip,
    async remove() {
      await execArgs('ip', ['netns', 'del', ns]);
    },
  };
  try {
    await sh(
      'ip',
      ['-n', ns, '-batch', '-'],
      [
        'link add nic0 type veth peer name nic0peer',
        'link add br0 type bridge',
        'link set nic0 master br0',
        `addr add ${address} dev br0`,
        'link set nic0 up',
        'link set br0 up',
      ].join('\n') + '\n',
    );
  } catch (err) {
    await fixture.remove();
    throw err;
  }
  return fixture;
}
