/**
 * NOT production: the same plugin calls, drivers and logs as `flatnet server`, so that bench/api-throughput.ts
 * measures what express costs in the same run. MODE "bare": a bare node:http listener instead of the express app;
 * "express-classes": the express app on a server made with httpOptionsFor(app) (what server.ts would do).
 * Started by the bench: node dist/bench/bare-plugin-server.js MODE SOCKET ETCD_ENDPOINTS PREFIX HOST_ID STATE_DIR
 */
import { createServer, type RequestListener } from 'node:http';
import { createPluginApp, httpOptionsFor } from '../src/api/plugin-app.js';
import { createPluginCalls, PluginCallError, replyJson } from '../src/api/plugin-calls.js';
import { settingsSchema } from '../src/config/settings.js';
import { createLogger } from '../src/observability/logger.js';
import { createDrivers } from '../src/server/production-drivers.js';
import { prepareSocketPath } from '../src/server/unix-socket.js';
import { EtcdStores } from '../src/store/etcd-stores.js';

async function main(): Promise<void> {
  const [mode, socket, etcdEndpoints, etcdPrefix, hostId, stateDir] = process.argv.slice(2);
  const settings = settingsSchema.parse({
    socket,
    etcdEndpoints,
    etcdPrefix,
    hostId,
    stateDir,
    etcdTimeoutMs: 5000,
    logLevel: 'info',
  });
  const logger = createLogger(settings.logLevel);
  const stores = EtcdStores.open(settings, logger);
  const drivers = createDrivers(stores, settings, logger);
  await drivers.init?.();
  const calls = createPluginCalls({ ipam: drivers.ipam, network: drivers.network, logger, hostId: settings.hostId });
  if (mode !== 'bare' && mode !== 'express-classes') throw new Error(`unknown mode ${String(mode)}`);
  const answerErr = (res: Parameters<typeof replyJson>[0], err: unknown, method: string): void => {
    const failure = err instanceof PluginCallError ? err : calls.unexpected(method, err);
    replyJson(res, failure.status, { Err: failure.message });
  };
  const bare: RequestListener = (req, res) => {
    const route = calls.routeFor(req.method, req.url);
    if (route === undefined) {
      req.resume();
      answerErr(res, calls.unknownMethod(req.method, req.url), '');
      return;
    }
    calls.answer(route, req).then(
      (answer) => replyJson(res, 200, answer),
      (err: unknown) => answerErr(res, err, route.method),
    );
  };
  const deps = { ipam: drivers.ipam, network: drivers.network, logger, hostId: settings.hostId };
  const app = mode === 'express-classes' ? createPluginApp(deps) : undefined;
  const server = app
    ? createServer({ ...httpOptionsFor(app), requireHostHeader: false, keepAlive: true }, app)
    : createServer({ requireHostHeader: false, keepAlive: true }, bare);
  server.keepAliveTimeout = 120_000;
  server.requestTimeout = 0;
  await prepareSocketPath(settings.socket);
  await new Promise<void>((resolve) => server.listen(settings.socket, resolve));
  process.once('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => {
      void drivers.close?.().finally(() => {
        stores.close();
        logger.flush(() => process.exit(0));
      });
    });
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bare plugin server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
