import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { createPluginApp, httpOptionsFor } from '../api/plugin-app.js';
import type { Settings } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { EtcdStores } from '../store/etcd-stores.js';
import { flatnetVersion } from '../version.js';
import { Agents } from '../agents/agents.js';
import type { DriverFactory } from './drivers.js';
import { startHealing } from '../agents/ipam-healing.js';
import { createDrivers } from './production-drivers.js';
import { startMetricsListener } from './metrics-listener.js';
import { prepareSocketPath, removeOwnSocket, restrictSocket } from './unix-socket.js';
import { acquireHostLock, type HostLock } from './host-lock.js';

export interface RunningServer {
  socketPath: string;
  /** HOST:PORT of the metrics listener when one was asked for. */
  metricsAddress?: string;
  /** Stops accepting, lets in-flight calls finish (bounded), closes etcd, removes the socket. Idempotent. */
  close(): Promise<void>;
}

export interface ServerOverrides {
  createDrivers?: DriverFactory;
  /** How long in-flight calls may run on after close() before their connections are cut. */
  drainMs?: number;
}

/**
 * Go's client keeps idle plugin connections for 90 s. Closing one first races with dockerd writing a request
 * on it, and its retry re-sends an empty body; so idle connections are left for the client to close.
 */
const KEEP_ALIVE_MS = 120_000;

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeHttp(server: Server, drainMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const cut = setTimeout(() => server.closeAllConnections(), drainMs);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function startServer(
  settings: Settings,
  logger: Logger,
  overrides: ServerOverrides = {},
): Promise<RunningServer> {
  const log = logger.child({ component: 'server' });
  const drainMs = overrides.drainMs ?? 10_000;
  // The composition root: one client and one set of stores for the drivers, the registry and the probe.
  const stores = EtcdStores.open(settings, logger);
  const drivers = (overrides.createDrivers ?? createDrivers)(stores, settings, logger);
  const app = createPluginApp({ ipam: drivers.ipam, network: drivers.network, logger, hostId: settings.hostId });

  const server = createServer({ ...httpOptionsFor(app), requireHostHeader: false, keepAlive: true }, app);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // Docker has no per-call timeout; nothing here should cut a slow response either.
  server.requestTimeout = 0;
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', (err, socket) => {
    log.warn({ error: errorMessage(err) }, 'malformed HTTP from a client');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  });

  let own: { dev: number; ino: number };
  let hostLock: HostLock | undefined;
  try {
    // The only server in this network namespace and state dir, before anything on the host is touched.
    hostLock = await acquireHostLock({ stateDir: settings.stateDir, socket: settings.socket });
    // Before the socket exists: Docker's first call after a reboot must find the bridge already back.
    await drivers.init?.();
    await prepareSocketPath(settings.socket);
    await listen(server, settings.socket);
    own = await restrictSocket(settings.socket);
  } catch (err) {
    stores.close();
    await drivers.close?.().catch(() => undefined);
    await hostLock?.release();
    throw err;
  }

  let metrics: Awaited<ReturnType<typeof startMetricsListener>> | undefined;
  if (settings.metricsListen !== undefined) {
    try {
      metrics = await startMetricsListener({
        listen: settings.metricsListen,
        checkEtcd: () => stores.probe(),
        timeoutMs: Math.min(settings.etcdTimeoutMs, 3000),
        logger: log,
      });
    } catch (err) {
      await closeHttp(server, 0);
      await removeOwnSocket(settings.socket, own);
      await drivers.close?.().catch(() => undefined);
      stores.close();
      await hostLock?.release();
      throw err;
    }
  }
  // The host's background work, in the order it stops: the heal loops, then the drivers' own agents, and the
  // registration last (the host shows as down once nothing of it runs any more).
  const agents = new Agents(log);
  if (drivers.heal) agents.add('heal loops', startHealing(drivers.heal, settings, logger));
  agents.add('drivers', { stop: () => drivers.close?.() ?? Promise.resolve() });
  // Liveness for `flatnet status`; it retries on its own, so etcd being down never blocks serving.
  agents.add(
    'host registration',
    stores.hosts.start({ hostId: settings.hostId, logger: log, version: flatnetVersion() }),
  );
  log.info(
    { socket: settings.socket, metrics: metrics?.address, host_id: settings.hostId },
    'flatnet plugin listening',
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const started = Date.now();
      log.info({ open_connections: sockets.size }, 'shutting down: no new connections, finishing in-flight calls');
      await Promise.all([closeHttp(server, drainMs), metrics ? closeHttp(metrics.server, 1000) : Promise.resolve()]);
      // Plugin calls are done. What is left (heal loops, owner updates, deregistration) still reaches a healthy
      // etcd at the first send, but must not hold the exit up for the whole etcd budget while etcd is away.
      stores.io.close();
      await agents.stop();
      stores.close();
      await removeOwnSocket(settings.socket, own).catch((err: unknown) =>
        log.warn({ error: errorMessage(err) }, 'could not remove the socket'),
      );
      await hostLock?.release();
      log.info({ duration_ms: Date.now() - started }, 'flatnet plugin stopped');
    })();
    return closing;
  };

  return { socketPath: settings.socket, ...(metrics ? { metricsAddress: metrics.address } : {}), close };
}
