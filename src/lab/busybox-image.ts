import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from './processes.js';

export const IMAGE = 'flatnet-bb';
const BUSYBOX = '/bin/busybox';

/**
 * Writes a tarball of a root file system holding the static busybox and one symlink per applet: enough for
 * `sh`, `ping`, `ip`, `sleep` in a container without any registry. Returns the tarball's path.
 */
export async function buildBusyboxTarball(outDir: string): Promise<string> {
  const root = await mkdtemp(join(outDir, 'bb-rootfs-'));
  try {
    await mkdir(join(root, 'bin'), { recursive: true });
    await copyFile(BUSYBOX, join(root, 'bin/busybox'));
    const list = await run(BUSYBOX, ['--list-full']);
    for (const applet of list
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '')) {
      if (applet === 'bin/busybox' || applet.includes('..')) continue;
      await mkdir(join(root, dirname(applet)), { recursive: true });
      await symlink('/bin/busybox', join(root, applet)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'root']) await mkdir(join(root, d), { recursive: true });
    const tarball = join(outDir, 'flatnet-bb.tar');
    await run('tar', ['-C', root, '-cf', tarball, '.']);
    return tarball;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export async function importImage(docker: (args: string[]) => Promise<string>, tarball: string): Promise<void> {
  await docker(['import', '--change', 'CMD ["/bin/sh"]', tarball, IMAGE]);
}
