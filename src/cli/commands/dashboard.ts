import { Command } from 'commander';
import { listenAddress } from '../../config/settings.js';
import { FlatnetError } from '../../errors.js';
import { createLogger } from '../../observability/logger.js';
import { settingsFrom, withSettingsFlags } from '../common.js';
import { printLine } from '../output.js';

export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:9472';

/** `flatnet dashboard`: the read-only web page of pools, hosts and the address map, until SIGINT/SIGTERM. */
export function dashboardCommand(): Command {
  return withSettingsFlags(
    new Command('dashboard')
      .description('serve a read-only web page of pools, hosts and the address map (live from etcd)')
      .option('--listen <host:port>', 'where to serve the page', DEFAULT_DASHBOARD_LISTEN),
  ).action(async (flags: { listen: string }, cmd: Command) => {
    const listen = listenAddress.safeParse(flags.listen);
    if (!listen.success)
      throw new FlatnetError('invalid', `--listen ${flags.listen}: ${listen.error.issues[0]?.message ?? 'malformed'}`);
    const settings = settingsFrom(cmd);
    const { startDashboard } = await import('../../dashboard/run.js');
    // A long-running process: it logs (to stderr) at the configured level, as the server does.
    const logger = createLogger(settings.logLevel, 'flatnet-dashboard');
    let running;
    try {
      running = await startDashboard(settings, listen.data, logger);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL')
        throw new FlatnetError('invalid', `cannot listen on ${listen.data} (${String(code)}); choose another --listen`);
      throw err;
    }
    printLine(`flatnet dashboard: serving ${running.url} (read only; Ctrl-C stops)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    // A watch still trying to reach etcd would keep the process alive: the close is bounded, then it exits.
    const closed = running.close().catch(() => undefined);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
    process.exit(0);
  });
}
