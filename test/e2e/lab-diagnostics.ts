import type { Lab } from '../../src/lab/lab.js';

/**
 * Runs a test body; when it fails, the error carries the tails of every host's dockerd/containerd/plugin logs,
 * since an end-to-end failure is nearly always explained there. The failure itself is repeated after the logs:
 * a CI excerpt that shows only the end of the output still says what failed.
 */
export async function withLabLogs<T>(lab: Lab, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const raw = await lab.diagnostics().catch((d: Error) => `(no logs: ${d.message})`);
    const logs = `${raw}\n\n--- the failure (again, after the logs): ${e.message.split('\n').slice(0, 6).join('\n')}`;
    e.message = `${e.message}\n\n${logs}`;
    // The test reporter prints the stack, which was made with the first message.
    if (e.stack !== undefined) e.stack = `${e.stack}\n\n${logs}`;
    throw e;
  }
}
