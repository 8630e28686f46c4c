import { Command } from 'commander';
import { z } from 'zod';
import { FlatnetError } from '../../errors.js';
import { execArgs, failureLine, type ExecResult } from '../../hostnet/exec.js';
import { IpRunner } from '../../hostnet/ip-runner.js';
import { readNicFacts } from '../../hostnet/nic-facts.js';
import { settingsFrom, withAdmin, withSettingsFlags } from '../common.js';
import {
  checkRequest,
  compareExisting,
  planNetwork,
  type CreateNetworkRequest,
  type ExistingNetwork,
} from '../network-plan.js';
import { printLine } from '../output.js';

const inspectSchema = z.object({
  Driver: z.string(),
  IPAM: z.object({ Config: z.array(z.object({ Subnet: z.string().optional() })).nullable() }),
});

async function docker(args: string[]): Promise<ExecResult> {
  try {
    return await execArgs('docker', args);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new FlatnetError('unavailable', 'docker is not installed (no `docker` on PATH)');
    throw err;
  }
}

async function inspectNetwork(hostArgs: string[], name: string): Promise<ExistingNetwork | undefined> {
  const res = await docker([...hostArgs, 'network', 'inspect', '--format', '{{json .}}', name]);
  if (res.code !== 0) {
    if (/no such network|not found/i.test(res.stderr)) return undefined;
    throw new FlatnetError('unavailable', `docker network inspect failed: ${failureLine(res)}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(res.stdout) as unknown;
  } catch {
    data = undefined;
  }
  const parsed = inspectSchema.safeParse(data);
  if (!parsed.success)
    throw new FlatnetError(
      'unavailable',
      `docker network inspect ${name} printed a network flatnet does not understand`,
    );
  return {
    driver: parsed.data.Driver,
    subnets: (parsed.data.IPAM.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])),
  };
}

/** `flatnet create-network`: the Docker network on this host, with subnet and gateway taken from the pool. */
export function createNetworkCommand(): Command {
  return withSettingsFlags(
    new Command('create-network')
      .description('create the flatnet Docker network on this host (safe to repeat)')
      .requiredOption('--name <name>', 'Docker network name')
      .option(
        '--subnet <cidr>',
        "pool to use (default: the pool holding the address of the NIC, --parent or the default route's)",
      )
      .option(
        '--gateway <address>',
        "default: the pool's host-range gateway (without --subnet: or the default route via the NIC)",
      )
      .option('--ip-range <cidr>', "limit this host's containers to a CIDR inside the subnet")
      .option('--parent <nic>', 'physical NIC that the bridge takes over')
      .option('--bridge <name>', 'bridge name (driver default br0)')
      .option('--mtu <bytes>', 'MTU of the container interfaces')
      .option('--driver <name>', 'plugin name for -d and --ipam-driver', 'flatnet')
      .option('--docker-host <url>', 'Docker daemon, e.g. unix:///var/run/docker.sock'),
  ).action(async (flags: CreateNetworkRequest, cmd: Command) => {
    // Refused before etcd or Docker is asked anything.
    const checked = checkRequest(flags);
    const settings = settingsFrom(cmd);
    const pools = await withAdmin(settings, (admin) => admin.poolSummaries());
    // Without --subnet the network is the segment of this host's own NIC (racks with their own subnets).
    const nic = checked.subnet === undefined ? await readNicFacts(new IpRunner(), checked.req.parent) : undefined;
    const plan = planNetwork(checked, pools, nic);
    const existing = await inspectNetwork(plan.hostArgs, flags.name);
    if (existing !== undefined) {
      if (compareExisting(existing, flags.driver, plan.subnet) === 'same') {
        printLine(
          `network ${flags.name} already exists (driver ${flags.driver}, subnet ${plan.subnet}); nothing to do`,
        );
        return;
      }
      throw new FlatnetError(
        'conflict',
        `a network ${flags.name} already exists with driver ${existing.driver} and subnet ${existing.subnets.join(',') || 'none'}; remove it or choose another --name`,
      );
    }
    const created = await docker(plan.createArgs);
    if (created.code !== 0)
      throw new FlatnetError('unavailable', `docker network create failed: ${failureLine(created)}`);
    const from = plan.from !== undefined ? ` from ${plan.from}` : '';
    printLine(
      `created network ${flags.name} (driver ${flags.driver}, subnet ${plan.subnet}${from}${plan.gateway ? `, gateway ${plan.gateway}` : ''})`,
    );
  });
}
