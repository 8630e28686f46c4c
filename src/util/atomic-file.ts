import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface AtomicWriteOptions {
  /**
   * false: no fsync. The file still changes atomically for every process (a killed writer leaves the old file
   * or the new one), but a power loss may lose the write. Right for records of what dies with the machine
   * anyway: an endpoint record describes a container that a reboot ends.
   */
  durable?: boolean;
}

/**
 * Write-to-temp, fsync, rename, fsync directory: a reader or a crash sees the old file or the new one. Every
 * state file flatnet keeps (network and endpoint records, the takeover intent, the release journal) is written so.
 * The directory must exist.
 */
export async function writeFileAtomic(path: string, content: string, options: AtomicWriteOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const dir = dirname(path);
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(content);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (durable) await fsyncPath(dir);
}

/** Makes a file written with `durable: false` durable: its data, then its name in the directory. */
export async function syncFile(path: string): Promise<void> {
  await fsyncPath(path);
  await fsyncPath(dirname(path));
}

/** The file's text, or undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** One text file replaced atomically on every save (the release journal's storage). */
export class AtomicTextFile {
  /** The directory is made at the first save: the release journal is saved on the path of every ReleaseAddress. */
  private dirMade = false;

  constructor(
    readonly path: string,
    private readonly options: { durable?: boolean } = {},
  ) {}

  load(): Promise<string | undefined> {
    return readFileIfExists(this.path);
  }

  async save(text: string): Promise<void> {
    if (!this.dirMade) {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      this.dirMade = true;
    }
    await writeFileAtomic(this.path, text, this.options);
  }
}
