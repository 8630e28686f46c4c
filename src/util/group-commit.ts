/**
 * Combines requests that queue up behind an in-flight txn: per key (pool), while one run is in flight, new
 * requests wait, and the next run serves all of them at once (at most maxBatch). A run may serve fewer than it
 * was given; the rest go first into the next run.
 *
 * Group commit: closed-loop callers (dockerd, a benchmark) come back soon after their reply, so right after a
 * run the queue often holds only part of them, and serving that part at once splits the callers into two
 * half-size batches for good. So when fewer are queued than the last run served plus those already waiting,
 * the next run waits up to gatherMs for the rest (like PostgreSQL's commit_delay with commit_siblings). A
 * lone caller never waits: after a run of one, nobody else is expected.
 *
 * One run per pool at a time, on purpose: two overlapping runs (on different blocks) were measured slower
 * here, because they halve the batch size and the plugin is CPU-bound before etcd is.
 */
interface Waiting<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface Lane<I, O> {
  queue: Waiting<I, O>[];
  /** Callers the last run served plus those queued during it: how many the next run can expect. */
  expected: number;
  /** Set while the next run gathers: ends the wait early once `expected` are queued. */
  wake: (() => void) | undefined;
}

export interface GroupCommitOptions {
  maxBatch: number;
  /** Longest a run waits for expected callers to come back; 0 = never wait. */
  gatherMs: number;
}

export class GroupCommit<I, O> {
  private readonly lanes = new Map<string, Lane<I, O>>();

  constructor(
    private readonly run: (key: string, inputs: I[]) => Promise<O[]>,
    private readonly options: GroupCommitOptions,
  ) {}

  submit(key: string, input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const lane = this.lanes.get(key);
      if (lane) {
        lane.queue.push({ input, resolve, reject });
        if (lane.wake && lane.queue.length >= this.target(lane)) lane.wake();
        return;
      }
      this.lanes.set(key, { queue: [{ input, resolve, reject }], expected: 1, wake: undefined });
      void this.drain(key);
    });
  }

  private target(lane: Lane<I, O>): number {
    return Math.min(lane.expected, this.options.maxBatch);
  }

  private gather(lane: Lane<I, O>): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        lane.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, this.options.gatherMs);
      lane.wake = done;
    });
  }

  private async drain(key: string): Promise<void> {
    const lane = this.lanes.get(key);
    if (!lane) return;
    // One event-loop turn first: requests Docker sent together are parsed in the same I/O phase and join.
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (;;) {
      if (this.options.gatherMs > 0 && lane.queue.length < this.target(lane) && this.target(lane) > 1)
        await this.gather(lane);
      if (lane.queue.length === 0) {
        this.lanes.delete(key);
        return;
      }
      const batch = lane.queue.splice(0, this.options.maxBatch);
      let served = batch.length;
      try {
        const outs = await this.run(
          key,
          batch.map((w) => w.input),
        );
        served = outs.length;
        if (outs.length === 0) throw new Error('a batch run served no request');
        outs.forEach((o, i) => batch[i]?.resolve(o));
        lane.queue.unshift(...batch.slice(outs.length));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
      lane.expected = lane.queue.length + served;
    }
  }
}
