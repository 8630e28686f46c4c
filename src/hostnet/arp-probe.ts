import { FlatnetError, errorMessage } from '../errors.js';
import { execArgs, type ExecResult } from './exec.js';
import { assertIfName } from './names.js';

/**
 * RFC 5227 address probing: ARP requests with sender address 0.0.0.0 (iputils `arping -D`), so that probing
 * never pollutes a neighbour's ARP cache with an address that may turn out to be taken.
 */

export type ProbeResult = { address: string; answered: false } | { address: string; answered: true; mac: string };

export interface ProbeOptions {
  /** Probes sent per address (RFC 5227's PROBE_NUM is 3; 2 over 2 s catches a live machine in practice). */
  count?: number;
  /** Seconds to wait for an answer in all. */
  waitSeconds?: number;
}

export type ProgramRunner = (file: string, args: readonly string[]) => Promise<ExecResult>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/*
 * A reply for the address, or a request whose sender is the address (a machine announcing it, e.g. a gratuitous
 * ARP): RFC 5227 counts both as a conflict, and so does `arping -D` (exit 1). Seen here: a container that got the
 * address while it was probed announced it ("Broadcast request from ... for ...").
 */
const REPLY = /^(?:Unicast|Broadcast) (?:reply|request) from (\S+) \[([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\]/m;

/** The answering machine's MAC in arping's output (lower case), or undefined when nobody answered. */
export function answeringMac(arpingOutput: string, address: string): string | undefined {
  for (const line of arpingOutput.split('\n')) {
    const m = REPLY.exec(line.trim());
    if (m && m[1] === address && m[2] !== undefined) return m[2].toLowerCase();
  }
  return undefined;
}

/** argv for one DAD probe of `address` out of `ifname`. */
export function probeArgs(ifname: string, address: string, o: ProbeOptions = {}): string[] {
  assertIfName(ifname, 'probe interface');
  if (!IPV4.test(address))
    throw new FlatnetError('invalid', `${address} is not an IPv4 address; only IPv4 is probed with ARP.`);
  const count = o.count ?? 2;
  const wait = o.waitSeconds ?? 2;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(wait) || wait < 1) {
    throw new FlatnetError('invalid', 'ARP probe count and wait must be positive whole numbers.');
  }
  return ['-D', '-I', ifname, '-c', String(count), '-w', String(wait), address];
}

/**
 * Probes addresses from one interface (the bridge that holds the NIC). Exit 0 means nobody answered; exit 1 with a
 * reply line means a machine holds the address; anything else (no such interface, interface down, no arping) is a
 * failure of probing itself, which the caller must not confuse with "free".
 */
export class ArpProber {
  constructor(private readonly run: ProgramRunner = execArgs) {}

  async probe(ifname: string, address: string, o: ProbeOptions = {}): Promise<ProbeResult> {
    // Not -q: the reply line is what names the answering MAC.
    const args = probeArgs(ifname, address, o);
    let res: ExecResult;
    try {
      res = await this.run('arping', args);
    } catch (err) {
      throw new FlatnetError('unavailable', `Could not run arping to probe ${address}: ${errorMessage(err)}`, {
        cause: err,
      });
    }
    if (res.code === 0) return { address, answered: false };
    const mac = answeringMac(res.stdout, address);
    if (res.code === 1 && mac !== undefined) return { address, answered: true, mac };
    throw new FlatnetError(
      'unavailable',
      `arping could not probe ${address} on ${ifname}: ${(res.stderr || res.stdout).trim().split('\n')[0] ?? `exit ${res.code}`}`,
    );
  }
}
