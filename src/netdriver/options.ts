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
const KNOWN = ['parent', 'bridge', 'mtu'] as const;

export function parseNetworkOptions(generic: Record<string, string>): NetworkOptions {
  const unknown = Object.keys(generic).filter((k) => !(KNOWN as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new FlatnetError(
      'invalid',
      `Unknown network option ${unknown.map((k) => `-o ${k}`).join(', ')}: flatnet accepts -o parent=NIC, -o bridge=NAME and -o mtu=N.`,
    );
  }
  const out: NetworkOptions = { bridge: DEFAULT_BRIDGE };
  if (generic.parent !== undefined) out.parent = assertIfName(generic.parent.trim(), 'parent interface name (-o parent)');
  if (generic.bridge !== undefined) out.bridge = assertIfName(generic.bridge.trim(), 'bridge name (-o bridge)');
  if (generic.mtu !== undefined) {
    const text = generic.mtu.trim();
    const mtu = Number(text);
    if (!/^\d+$/.test(text) || mtu < 68 || mtu > 65535) {
      throw new FlatnetError('invalid', `-o mtu=${generic.mtu} is not valid: give a whole number from 68 to 65535.`);
    }
    out.mtu = mtu;
  }
  if (out.parent !== undefined && out.parent === out.bridge) {
    throw new FlatnetError('invalid', `-o parent and -o bridge are both "${out.bridge}": the bridge must be a new name.`);
  }
  return out;
}
