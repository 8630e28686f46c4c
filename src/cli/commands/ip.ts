import { Command } from 'commander';
import { hostIdFlag, settingsFrom, subnetFlag, withAdmin, withSettingsFlags } from '../common.js';
import { formatTable, JsonArrayPrinter, printJson, printLine, TablePrinter } from '../output.js';
import { FlatnetError } from '../../errors.js';
import { clearConflictAction, conflictsAction } from './ip-conflicts.js';
import { orphansAction, reconcileAction, releaseAction } from './ip-heal.js';

/** `flatnet ip list|release`: the addresses handed to containers, cluster-wide. */
export function ipCommand(): Command {
  const group = new Command('ip').description('addresses assigned to containers');

  withSettingsFlags(
    group
      .command('list')
      .description('list assigned addresses (held by containers); --released: those cooling or parked for a name')
      .option('--subnet <cidr>', 'only this pool')
      .option('--host <hostId>', 'only addresses held (or last held) by this host')
      .option('--released', 'released addresses not yet handed out again, with their release time')
      .option('--orphans', "this host's addresses no endpoint holds (what `ip reconcile` would free)")
      .option('--conflicts', 'addresses a machine outside flatnet answered ARP for (no host hands them out)')
      .option('--json', 'machine-readable output'),
  ).action(
    async (
      flags: {
        subnet?: string;
        host?: string;
        released?: boolean;
        json?: boolean;
        orphans?: boolean;
        conflicts?: boolean;
      },
      cmd: Command,
    ) => {
      const views = [flags.released, flags.orphans, flags.conflicts].filter((f) => f === true).length;
      if (views > 1) throw new FlatnetError('invalid', 'give one of --released, --orphans and --conflicts');
      if (flags.orphans) return orphansAction(flags, cmd);
      if (flags.conflicts) return conflictsAction(flags, cmd);
      const filter = {
        ...(flags.subnet !== undefined ? { subnet: subnetFlag('--subnet', flags.subnet) } : {}),
        ...(flags.host !== undefined ? { hostId: hostIdFlag('--host', flags.host) } : {}),
      };
      const settings = settingsFrom(cmd);
      // The container's name: Docker's own (after Join) or the one Docker 29+ sent with the request.
      const nameOf = (a: { containerName?: string; endpointName?: string }): string =>
        a.containerName ?? a.endpointName ?? '';
      const short = (id: string | undefined): string => (id ?? '').slice(0, 12);
      if (flags.released) {
        const released = await withAdmin(settings, (admin) => admin.listReleased(filter));
        if (flags.json) return printJson(released);
        printLine(
          formatTable(
            ['ADDRESS', 'SUBNET', 'STATE', 'RELEASED', 'NAME', 'LAST HOST', 'CONTAINER', 'NETWORK'],
            released.map((a) => [
              a.address,
              a.subnet,
              a.kind,
              a.releasedAt,
              nameOf(a),
              a.hostId,
              short(a.containerId),
              short(a.networkId),
            ]),
          ),
        );
        return;
      }
      // Printed page by page as read: the CLI holds one page, whatever the pools' size.
      const header = ['ADDRESS', 'SUBNET', 'HOST', 'SINCE', 'NAME', 'CONTAINER', 'ENDPOINT', 'NETWORK', 'MAC'];
      const out = flags.json ? new JsonArrayPrinter() : new TablePrinter(header);
      await withAdmin(settings, async (admin) => {
        for await (const page of admin.assignmentPages(filter)) {
          if (out instanceof JsonArrayPrinter) out.page(page);
          else
            out.page(
              page.map((a) => [
                a.address,
                a.subnet,
                a.hostId,
                a.since,
                nameOf(a),
                short(a.containerId),
                short(a.endpointId),
                short(a.networkId),
                a.macAddress ?? '',
              ]),
            );
        }
      });
      out.end();
    },
  );

  withSettingsFlags(
    group
      .command('release')
      .description(
        'free an assigned address whoever holds it, readable record or not (refused while an endpoint on this host holds it)',
      )
      .argument('<address>', 'the address to free')
      .option('--force', 'free it even though an endpoint on this host holds it'),
  ).action(releaseAction);

  withSettingsFlags(
    group
      .command('clear-conflict')
      .description(
        'forget a recorded conflict (the machine outside flatnet is gone): the address is free again at once',
      )
      .argument('<address>', 'the address to free'),
  ).action(clearConflictAction);

  withSettingsFlags(
    group
      .command('reconcile')
      .description(
        "free this host's addresses that no endpoint on it holds (what the server does every reconcile period)",
      )
      .option('--dry-run', 'only show what would be freed')
      .option('--json', 'machine-readable output'),
  ).action(reconcileAction);
  return group;
}
