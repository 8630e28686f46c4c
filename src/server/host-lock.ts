import { link, mkdir, readdir, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import { FlatnetError, errorMessage } from '../errors.js';
import { socketAnswers } from './unix-socket.js';

/**
 * One flatnet server per network namespace and per state directory. A second server would reconcile against
 * its own records and delete the first one's live veths, so it must be refused before it touches the host.
 *
 * - An abstract Unix socket (name starting with NUL): abstract names are per network namespace and vanish with
 *   the process, so kill -9 leaves no stale lock.
 * - A socket file in the state directory: reachable across namespaces, so two servers in different namespaces
 *   cannot share one state directory. A file nobody answers on is a crashed server's and is replaced.
 * - The plugin socket: a live server answering there is refused too (a stale file is replaced later).
 *
 * Each lock socket answers a connection with one JSON line naming its server, for the refusal message.
 */

export const NAMESPACE_LOCK_NAME = '\0flatnet-server';
export const STATE_DIR_LOCK_FILE = 'server.lock.sock';

const holderSchema = z.object({ pid: z.number().int(), stateDir: z.string(), socket: z.string() });
export type LockHolder = z.infer<typeof holderSchema>;

export interface HostLockOptions {
  stateDir: string;
  socket: string;
  /** Abstract socket name (tests only; production uses NAMESPACE_LOCK_NAME). */
  namespaceLockName?: string;
}

export interface HostLock {
  release(): Promise<void>;
}

function listenOn(server: Server, path: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException): void => resolve(err);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      resolve(undefined);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}

/** Asks the lock socket at `path` who holds it; undefined when nobody answers or the answer is not ours. */
export function askHolder(path: string, timeoutMs = 1000): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    const conn: Socket = connect({ path });
    let text = '';
    const done = (h: LockHolder | undefined): void => {
      conn.destroy();
      resolve(h);
    };
    conn.setTimeout(timeoutMs, () => done(undefined));
    conn.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.length > 4096) done(undefined);
    });
    conn.on('end', () => {
      try {
        const parsed = holderSchema.safeParse(JSON.parse(text) as unknown);
        done(parsed.success ? parsed.data : undefined);
      } catch {
        done(undefined);
      }
    });
    conn.on('error', () => done(undefined));
  });
}

function describe(h: LockHolder | undefined): string {
  return h === undefined
    ? 'another flatnet server'
    : `another flatnet server (pid ${h.pid}, state dir ${h.stateDir}, socket ${h.socket})`;
}

/**
 * Takes the three locks, in that order, or throws FlatnetError('conflict') naming the other server. Nothing on
 * the host, in the state directory (but its lock file) or at the plugin socket is changed by a refused start.
 */
export async function acquireHostLock(o: HostLockOptions): Promise<HostLock> {
  const me: LockHolder = { pid: process.pid, stateDir: o.stateDir, socket: o.socket };
  const answer = (c: Socket): void => {
    c.on('error', () => undefined);
    c.end(`${JSON.stringify(me)}\n`);
  };
  const nsName = o.namespaceLockName ?? NAMESPACE_LOCK_NAME;
  const nsServer = createServer(answer);
  const nsErr = await listenOn(nsServer, nsName);
  if (nsErr !== undefined) {
    if (nsErr.code !== 'EADDRINUSE') {
      throw new FlatnetError('unavailable', `Cannot take the per-namespace server lock: ${errorMessage(nsErr)}`);
    }
    throw new FlatnetError(
      'conflict',
      `${describe(await askHolder(nsName))} already runs in this network namespace; stop it before starting flatnet`,
    );
  }
  const held: (() => Promise<void>)[] = [() => closeServer(nsServer)];
  const releaseAll = async (): Promise<void> => {
    for (const r of held.reverse()) await r().catch(() => undefined);
    held.length = 0;
  };
  try {
    await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
    const lockPath = join(o.stateDir, STATE_DIR_LOCK_FILE);
    // Bound under a private name, then hard-linked into place: link() never replaces, so of two servers racing
    // for one directory only one gets the name.
    const tmpPath = join(o.stateDir, `.server.${process.pid}.sock`);
    await unlink(tmpPath).catch(() => undefined);
    const dirServer = createServer(answer);
    const dirErr = await listenOn(dirServer, tmpPath);
    if (dirErr !== undefined)
      throw new FlatnetError(
        'unavailable',
        `Cannot take the state directory lock ${lockPath}: ${errorMessage(dirErr)}`,
      );
    held.push(async () => {
      await closeServer(dirServer);
      await unlink(tmpPath).catch(() => undefined);
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmpPath, lockPath);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
          throw new FlatnetError(
            'unavailable',
            `Cannot take the state directory lock ${lockPath}: ${errorMessage(err)}`,
          );
        }
      }
      const holder = await askHolder(lockPath);
      if (holder !== undefined || (await socketAnswers(lockPath))) {
        throw new FlatnetError(
          'conflict',
          `${describe(holder)} uses the state directory ${o.stateDir}; stop it before starting flatnet`,
        );
      }
      // Left by a server that died: nobody answers on it.
      await unlink(lockPath).catch(() => undefined);
    }
    held.push(() => unlink(lockPath).catch(() => undefined));
    // Private names of servers killed before they let go of theirs: the directory is ours now.
    for (const name of await readdir(o.stateDir)) {
      if (/^\.server\.\d+\.sock$/.test(name) && join(o.stateDir, name) !== tmpPath)
        await unlink(join(o.stateDir, name)).catch(() => undefined);
    }
    if (await socketAnswers(o.socket)) {
      throw new FlatnetError(
        'conflict',
        `another server is already listening on ${o.socket}; stop it before starting flatnet`,
      );
    }
  } catch (err) {
    await releaseAll();
    throw err;
  }
  return { release: releaseAll };
}
