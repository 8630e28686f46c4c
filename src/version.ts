import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** The package version, read from the package.json shipped next to dist/ (also in the rpm and the plugin). */
export function flatnetVersion(): string {
  try {
    const url = new URL('../../package.json', import.meta.url);
    return z.object({ version: z.string() }).parse(JSON.parse(readFileSync(url, 'utf8'))).version;
  } catch {
    return 'unknown';
  }
}
