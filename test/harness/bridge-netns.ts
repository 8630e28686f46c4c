import { randomBytes } from 'node:crypto';
import { execArgs } from '../../src/hostnet/exec.js';

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
  const ip = async (args: readonly string[]): Promise<string> => {
    const res = await execArgs('ip', ['-n', ns, ...args]);
    if (res.code !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
    return res.stdout;
  };
  const created = await execArgs('ip', ['netns', 'add', ns]);
  if (created.code !== 0) throw new Error(`ip netns add ${ns}: ${created.stderr.trim()}`);
  const fixture: BridgeNetns = {
    ns,
    ip,
    async remove() {
      await execArgs('ip', ['netns', 'del', ns]);
    },
  };
  try {
    await ip(['link', 'add', 'nic0', 'type', 'veth', 'peer', 'name', 'nic0peer']);
    await ip(['link', 'add', 'br0', 'type', 'bridge']);
    await ip(['link', 'set', 'nic0', 'master', 'br0']);
    await ip(['addr', 'add', address, 'dev', 'br0']);
    await ip(['link', 'set', 'nic0', 'up']);
    await ip(['link', 'set', 'br0', 'up']);
  } catch (err) {
    await fixture.remove();
    throw err;
  }
  return fixture;
}
