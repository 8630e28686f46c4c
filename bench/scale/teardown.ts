/**
 * What a bench run must undo if it is interrupted (etcd members, temp dirs): registered while it runs, done once,
 * either by the run itself or on SIGINT/SIGTERM before the process exits.
 */
const pending = new Set<() => Promise<void>>();

/** Registers `undo`; the returned function runs it once and unregisters it. */
export function onTeardown(undo: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = (): Promise<void> => {
    pending.delete(once);
    return (done ??= undo());
  };
  pending.add(once);
  return once;
}

export function tearDownOnSignals(): void {
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${signal}: stopping etcd and removing temp dirs\n`);
    void Promise.allSettled([...pending].map((undo) => undo())).then(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
