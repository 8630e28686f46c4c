import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { FlatnetError } from '../errors.js';

/** True when something accepts connections on the socket path (another live plugin). */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect({ path });
    const done = (alive: boolean): void => {
      conn.destroy();
      resolve(alive);
    };
    conn.setTimeout(timeoutMs, () => done(true)); // accepted but silent is still someone else's live socket
    conn.once('connect', () => done(true));
    conn.once('error', () => done(false));
  });
}

/**
 * Makes the path ready for listen(): the parent directory exists (0700, as dockerd creates
 * /run/docker/plugins), and a stale socket left by a crashed plugin is removed, because Docker would hang
 * ≈15 s on it. A live server on the path, or a file that is not a socket, is never touched.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let stat;
  try {
    stat = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) {
    throw new FlatnetError('conflict', `${path} exists and is not a socket; remove it or choose another --socket`);
  }
  if (await socketAnswers(path)) {
    throw new FlatnetError(
      'conflict',
      `another server is already listening on ${path}; stop it before starting flatnet`,
    );
  }
  await unlink(path);
}

/** dockerd runs as root: a root-owned 0660 socket is enough, and keeps other users out. */
export async function restrictSocket(path: string): Promise<{ dev: number; ino: number }> {
  await chmod(path, 0o660);
  const s = await lstat(path);
  return { dev: s.dev, ino: s.ino };
}

/** Removes the socket only if it is still the one this process created (a successor may own the path). */
export async function removeOwnSocket(path: string, own: { dev: number; ino: number }): Promise<void> {
  try {
    const s = await lstat(path);
    if (s.dev === own.dev && s.ino === own.ino) await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
