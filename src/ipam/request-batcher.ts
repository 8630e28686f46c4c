/**
 * Combines requests that queue up behind in-flight txns: per key (pool), up to `lanes` runs are in flight at
 * once, and each run takes every request waiting when it starts (at most maxBatch). With closed-loop callers
 * such as dockerd, the next batch fills while the current one commits. A run may serve fewer than it was
 * given; the rest go first into the next run.
 */
interface Waiting<I, O> {
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface KeyState<I, O> {
  queue: Waiting<I, O>[];
  /** Lanes in use; a run gets the lowest free one (the allocator keeps a cursor per lane). */
  lanesBusy: boolean[];
}

export class RequestBatcher<I, O> {
  private readonly keys = new Map<string, KeyState<I, O>>();

  constructor(
    private readonly run: (key: string, inputs: I[], lane: number) => Promise<O[]>,
    private readonly maxBatch: number,
    private readonly lanes = 2,
  ) {}

  submit(key: string, input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      let state = this.keys.get(key);
      if (!state) {
        state = { queue: [], lanesBusy: new Array<boolean>(this.lanes).fill(false) };
        this.keys.set(key, state);
      }
      state.queue.push({ input, resolve, reject });
      if (state.queue.length === 1) {
        // One event-loop turn first: requests Docker sent together are parsed in the same I/O phase and join.
        setImmediate(() => this.startRuns(key));
      }
    });
  }

  private startRuns(key: string): void {
    const state = this.keys.get(key);
    if (!state) return;
    for (;;) {
      const lane = state.lanesBusy.indexOf(false);
      if (lane < 0 || state.queue.length === 0) break;
      state.lanesBusy[lane] = true;
      void this.runBatch(key, state, lane, state.queue.splice(0, this.maxBatch));
    }
    if (state.queue.length === 0 && !state.lanesBusy.includes(true)) this.keys.delete(key);
  }

  private async runBatch(key: string, state: KeyState<I, O>, lane: number, batch: Waiting<I, O>[]): Promise<void> {
    try {
      const outs = await this.run(key, batch.map((w) => w.input), lane);
      if (outs.length === 0) throw new Error('a batch run served no request');
      outs.forEach((o, i) => batch[i]?.resolve(o));
      state.queue.unshift(...batch.slice(outs.length));
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      state.lanesBusy[lane] = false;
      this.startRuns(key);
    }
  }
}
