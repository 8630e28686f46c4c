/**
 * A lab has no registry to reach, and must not try: every docker command a test sends through the lab is made
 * pull-free here. `run`/`create` never pull (a missing image fails with "No such image" instead of a registry
 * lookup), swarm services and stacks never resolve their image at a registry, and commands whose only job is
 * to download are refused with a clear message. Pure argv rewriting; the daemons also run with
 * DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 so that swarm tasks start from the local store.
 */
export class LabPullRefused extends Error {}

const DOWNLOADS = new Set(['pull', 'image pull', 'plugin install', 'plugin upgrade', 'search', 'login']);
const NO_PULL_FLAG: Record<string, string> = {
  run: '--pull=never',
  create: '--pull=never',
  'container run': '--pull=never',
  'container create': '--pull=never',
  'service create': '--no-resolve-image',
  'service update': '--no-resolve-image',
  'stack deploy': '--resolve-image=never',
};

export function guardNoPull(args: string[]): string[] {
  const [first = '', second = ''] = args;
  const two = `${first} ${second}`;
  if (DOWNLOADS.has(first) || DOWNLOADS.has(two)) {
    throw new LabPullRefused(
      `the lab never downloads (docker ${two.trim()}): use an image in the host's store (lab IMAGE)`,
    );
  }
  const command = NO_PULL_FLAG[two] !== undefined ? two : NO_PULL_FLAG[first] !== undefined ? first : undefined;
  if (command === undefined) return args;
  const flag = NO_PULL_FLAG[command]!;
  const words = command.split(' ').length;
  const rest = args.slice(words);
  if (rest.includes(flag)) return args;
  // --pull (run/create) and --resolve-image (stack deploy) only in their never form, written as `flag`.
  const option = flag.split('=')[0]!;
  const other = rest.find((a) => a === option || a.startsWith(`${option}=`));
  if (other !== undefined)
    throw new LabPullRefused(`the lab never pulls: docker ${command} takes ${flag}, not ${other}`);
  return [...args.slice(0, words), flag, ...rest];
}
