import { FlatnetError } from '../errors.js';
import { assertIfName } from '../hostnet/names.js';

/** The `-o key=value` options flatnet networks accept. */
export interface NetworkOptions {
  /** The NIC the bridge takes over; absent = the device of the default route. */
  parent?: string;
  bridge: string;
  /** Container-side MTU; absent = the parent's. */
  mtu?: number;
}

export const DEFAULT_BRIDGE = 'br0';
/** Docker's own option for its announcements; it reaches the driver with the others (checked, not used). */
export const ADVERTISE_NMSGS_OPTION = 'com.docker.network.advertise_addr_nmsgs';
const KNOWN = ['parent', 'bridge', 'mtu', ADVERTISE_NMSGS_OPTION] as const;

/** How an option is named in messages: `-o mtu=1e3` to Docker users, `--mtu 1e3` to `flatnet create-network`'s. */
export interface OptionNaming {
  name(key: string): string;
  withValue(key: string, value: string): string;
}

export const DOCKER_OPTION_NAMING: OptionNaming = { name: (k) => `-o ${k}`, withValue: (k, v) => `-o ${k}=${v}` };
export const CLI_FLAG_NAMING: OptionNaming = { name: (k) => `--${k}`, withValue: (k, v) => `--${k} ${v}` };

export function parseNetworkOptions(
  generic: Record<string, string>,
  naming: OptionNaming = DOCKER_OPTION_NAMING,
): NetworkOptions {
  const unknown = Object.keys(generic).filter((k) => !(KNOWN as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new FlatnetError(
      'invalid',
      `Unknown network option ${unknown.map((k) => `-o ${k}`).join(', ')}: flatnet accepts -o parent=NIC, -o bridge=NAME and -o mtu=N.`,
    );
  }
  const out: NetworkOptions = { bridge: DEFAULT_BRIDGE };
  if (generic.parent !== undefined)
    out.parent = assertIfName(generic.parent.trim(), `parent interface name (${naming.name('parent')})`);
  if (generic.bridge !== undefined)
    out.bridge = assertIfName(generic.bridge.trim(), `bridge name (${naming.name('bridge')})`);
  if (generic.mtu !== undefined) {
    const text = generic.mtu.trim();
    const mtu = Number(text);
    if (!/^\d+$/.test(text) || mtu < 68 || mtu > 65535) {
      throw new FlatnetError(
        'invalid',
        `${naming.withValue('mtu', generic.mtu)} is not valid: give a whole number from 68 to 65535.`,
      );
    }
    out.mtu = mtu;
  }
  const nmsgs = generic[ADVERTISE_NMSGS_OPTION];
  if (nmsgs !== undefined && !/^\d{1,3}$/.test(nmsgs.trim())) {
    throw new FlatnetError(
      'invalid',
      `${naming.withValue(ADVERTISE_NMSGS_OPTION, nmsgs)} is not valid: give a whole number of messages.`,
    );
  }
  if (out.parent !== undefined && out.parent === out.bridge) {
    throw new FlatnetError(
      'invalid',
      `${naming.name('parent')} and ${naming.name('bridge')} are both "${out.bridge}": the bridge must be a new name.`,
    );
  }
  return out;
}
