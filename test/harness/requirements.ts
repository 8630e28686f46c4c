import { execFileSync } from 'node:child_process';

export type Requirement =
  | 'root'
  | 'etcd'
  | 'docker'
  | 'iproute2'
  | 'iptables'
  | 'arping'
  | 'rpmbuild'
  | 'iperf3'
  | 'openssl'
  | 'promtool'
  | 'chromium';

const BINARY: Record<Exclude<Requirement, 'root'>, string> = {
  etcd: 'etcd',
  docker: 'dockerd',
  iproute2: 'ip',
  iptables: 'iptables',
  arping: 'arping',
  rpmbuild: 'rpmbuild',
  iperf3: 'iperf3',
  openssl: 'openssl',
  promtool: 'promtool',
  chromium: 'chromium',
};

function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What each test tier may use (scripts/test.sh sets FLATNET_TEST_TIER); the full suite uses everything. */
const TIER_ALLOWS: Record<string, readonly Requirement[]> = {
  quick: [],
  etcd: ['etcd', 'openssl'],
};

/**
 * Returns false (run) or a skip reason: the requirement is outside the tier being run, or missing on a developer
 * machine. Under CI nothing may skip: a missing requirement is an error there, thrown here.
 * Use as: test('...', { skip: missing('root', 'etcd') }, async () => ...)
 */
export function missing(...reqs: Requirement[]): string | false {
  const tier = process.env.FLATNET_TEST_TIER;
  const allowed = tier === undefined ? undefined : TIER_ALLOWS[tier];
  const outside = allowed === undefined ? [] : reqs.filter((r) => !allowed.includes(r));
  if (outside.length > 0) return `not in the ${tier} tier (needs ${outside.join(', ')})`;
  const lacking: string[] = [];
  for (const r of reqs) {
    if (r === 'root') {
      if (process.getuid?.() !== 0) lacking.push('root (network namespaces, links)');
    } else if (!hasBinary(BINARY[r])) {
      lacking.push(`${BINARY[r]} (install with scripts/install-deps.sh)`);
    }
  }
  if (lacking.length === 0) return false;
  const reason = `needs ${lacking.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`CI must not skip: ${reason}`);
  return reason;
}
