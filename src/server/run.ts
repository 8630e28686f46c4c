import { redactSettings } from '../config/load.js';
import type { Settings } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { createLogger } from '../observability/logger.js';
import { startServer } from './server.js';

/**
 * `flatnet server`: runs the plugin until SIGTERM/SIGINT, then shuts down cleanly and exits the process.
 * Rejects (before listening) when the socket is taken or cannot be created.
 */
export async function runServer(settings: Settings): Promise<void> {
  const logger = createLogger(settings.logLevel);
  // A failing etcd call or a driver bug must cost one request, never the plugin Docker depends on.
  process.on('unhandledRejection', (reason) => {
    logger.error({ error: errorMessage(reason), err: reason }, 'unhandled rejection (kept running)');
  });
  process.on('uncaughtException', (err) => {
    logger.error({ error: errorMessage(err), err }, 'uncaught exception (kept running)');
  });
  logger.info({ settings: redactSettings(settings) }, 'starting flatnet plugin');
  const running = await startServer(settings, logger);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'stop signal received');
      void running.close().then(resolve, (err: unknown) => {
        logger.error({ error: errorMessage(err) }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  process.exit(0);
}
