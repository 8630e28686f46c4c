import { parseArgs } from 'node:util';
import { loadSettings, type RawSettings } from '../config/load.js';
import { flagName, SETTING_KEYS } from '../config/settings.js';
import { errorMessage } from '../errors.js';
import { runServer } from './run.js';

/**
 * Standalone entry for the plugin server (`node dist/src/server/main.js --socket ... --etcd-endpoints ...`);
 * `flatnet server` is the same with the CLI's flag handling. Every setting is accepted as --flag-name.
 */
async function main(argv: string[]): Promise<void> {
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const key of SETTING_KEYS) options[flagName(key)] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const flags: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const v = values[flagName(key)];
    if (typeof v === 'string') flags[key] = v;
  }
  const configFile = typeof values.config === 'string' ? values.config : undefined;
  await runServer(loadSettings({ flags, ...(configFile !== undefined ? { configFile } : {}) }));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`flatnet server: ${errorMessage(err)}\n`);
  process.exit(1);
});
