/**
 * Combines requests that queue up behind an in-flight txn: per key (pool), while one batch runs, new requests
 * wait, and the next run serves all of them at once. A run may serve fewer than it was given; the rest go first
 * into the next run.
 */
interface Waiting<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class RequestBatcher<I, O> {
  private readonly queues = new Map<string, Waiting<I, O>[]>();

  constructor(
    private readonly run: (key: string, inputs: I[]) => Promise<O[]>,
    private readonly maxBatch: number,
  ) {}

  submit(key: string, input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const queue = this.queues.get(key);
      if (queue) {
        queue.push({ input, resolve, reject });
        return;
      }
      this.queues.set(key, [{ input, resolve, reject }]);
      void this.drain(key);
    });
  }

  private async drain(key: string): Promise<void> {
    for (;;) {
      const queue = this.queues.get(key);
      if (!queue || queue.length === 0) {
        this.queues.delete(key);
        return;
      }
      const batch = queue.splice(0, this.maxBatch);
      try {
        const outs = await this.run(key, batch.map((w) => w.input));
        if (outs.length === 0) throw new Error('a batch run served no request');
        outs.forEach((o, i) => batch[i]?.resolve(o));
        queue.unshift(...batch.slice(outs.length));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
  }
}
