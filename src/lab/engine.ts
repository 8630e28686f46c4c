import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The Docker engine a lab's hosts run: Debian bookworm's docker.io (20.10, installed) or Docker 28 from Debian
 * unstable, unpacked by scripts/install-deps.sh into a cache directory (never installed). Tests name the engine
 * they run on, so that a failure says which engine it was.
 */
export interface Engine {
  /** Short name used in test names and lab names: docker20, docker28. */
  name: string;
  /** Directories put first on PATH for the host's daemons (dockerd, containerd, shims); empty: the machine's. */
  binDirs: string[];
  /** The docker CLI matching the daemon (a newer daemon gets the API and flags it expects). */
  cli: string;
}

export const DOCKER20: Engine = { name: 'docker20', binDirs: [], cli: '/usr/bin/docker' };

/** Where scripts/install-deps.sh unpacks Docker 28 (FLATNET_DOCKER28_DIR overrides it, as for the script). */
export function docker28Dir(): string {
  return process.env.FLATNET_DOCKER28_DIR ?? '/var/cache/flatnet/docker28';
}

/** Docker 28 (dockerd, docker CLI, containerd 2 and its shim; bookworm's runc), or undefined when not fetched. */
export function docker28(): Engine | undefined {
  const root = join(docker28Dir(), 'root');
  const binDirs = [join(root, 'usr/sbin'), join(root, 'usr/bin')];
  const needed = ['usr/sbin/dockerd', 'usr/bin/docker', 'usr/bin/containerd', 'usr/bin/containerd-shim-runc-v2'];
  if (!needed.every((f) => existsSync(join(root, f)))) return undefined;
  return { name: 'docker28', binDirs, cli: join(root, 'usr/bin/docker') };
}

/** The PATH a host's daemons see on this engine. */
export function enginePath(engine: Engine, base = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): string {
  return [...engine.binDirs, base].join(':');
}
