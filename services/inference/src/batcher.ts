/** Time and timers, injectable so the batching rules can be tested without waiting. */
export interface BatchClock {
  now(): number;
  setTimer(fire: () => void, ms: number): unknown;
  clearTimer(timer: unknown): void;
}

export const systemClock: BatchClock = {
  now: () => performance.now(),
  setTimer: (fire, ms) => setTimeout(fire, ms),
  clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
};

/** One item's outcome of a batch run. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: Error };

/**
 * Runs one batch of items of one key. Resolves with one outcome per item, in order (an item
 * can fail alone); a rejection fails every item of that batch and no other.
 */
export type BatchRun<I, O> = (key: string, items: I[]) => Promise<Settled<O>[]>;

export interface Batched<O> {
  value: O;
  /** Items in the batch this one ran in. */
  batchSize: number;
}

export interface MicroBatcherOptions<I, O> {
  run: BatchRun<I, O>;
  /** How long the first item of a batch may wait for others (ms). */
  maxWaitMs: number;
  /** Batches running at once (the runner's threads); beyond that, items wait here and batches keep filling. */
  capacity: number;
  clock?: BatchClock;
}

interface Waiting<I, O> {
  item: I;
  at: number;
  resolve: (result: Batched<O>) => void;
  reject: (error: Error) => void;
}

interface Queue<I, O> {
  key: string;
  maxBatch: number;
  items: Waiting<I, O>[];
}

/**
 * Dynamic micro-batching across jobs. Items are queued by key (a model and its input shape;
 * items of different keys never share a batch). A key's items go out as one batch when there
 * are `maxBatch` of them, or when the first has waited `maxWaitMs`, and only while fewer than
 * `capacity` batches are running: while the runner is busy, batches keep filling, so under
 * load they grow on their own and at low load an item waits at most `maxWaitMs`. When several
 * keys are due, the one whose first item is oldest goes first.
 */
export class MicroBatcher<I, O> {
  private readonly queues = new Map<string, Queue<I, O>>();
  private readonly clock: BatchClock;
  private running = 0;
  private timer: unknown = null;
  readonly stats = { batches: 0, items: 0 };

  constructor(private readonly options: MicroBatcherOptions<I, O>) {
    if (!(options.capacity >= 1) || !(options.maxWaitMs >= 0)) {
      throw new RangeError('a batcher needs capacity >= 1 and maxWaitMs >= 0');
    }
    this.clock = options.clock ?? systemClock;
  }

  /** Items waiting for a batch. */
  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.items.length;
    return n;
  }

  /** Queues an item under `key`; `maxBatch` 1 sends it alone as soon as the runner has room. */
  submit(key: string, maxBatch: number, item: I): Promise<Batched<O>> {
    if (!(Number.isInteger(maxBatch) && maxBatch >= 1)) throw new RangeError(`maxBatch must be >= 1, got ${maxBatch}`);
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(key);
      if (!queue) {
        queue = { key, maxBatch, items: [] };
        this.queues.set(key, queue);
      }
      // A key whose limit was lowered (a model found not to batch) keeps the lower one.
      queue.maxBatch = Math.min(queue.maxBatch, maxBatch);
      queue.items.push({ item, at: this.clock.now(), resolve, reject });
      this.pump();
    });
  }

  private due(queue: Queue<I, O>, now: number): boolean {
    return queue.items.length >= queue.maxBatch || now - queue.items[0]!.at >= this.options.maxWaitMs;
  }

  private pump(): void {
    if (this.timer !== null) {
      this.clock.clearTimer(this.timer);
      this.timer = null;
    }
    const now = this.clock.now();
    while (this.running < this.options.capacity) {
      let next: Queue<I, O> | undefined;
      for (const queue of this.queues.values()) {
        if (this.due(queue, now) && (!next || queue.items[0]!.at < next.items[0]!.at)) next = queue;
      }
      if (!next) break;
      this.dispatch(next);
    }
    if (this.running >= this.options.capacity || this.queues.size === 0) return;
    // Room to run, but nothing due yet: wake when the oldest first item's wait ends.
    let deadline = Infinity;
    for (const queue of this.queues.values())
      deadline = Math.min(deadline, queue.items[0]!.at + this.options.maxWaitMs);
    this.timer = this.clock.setTimer(
      () => {
        this.timer = null;
        this.pump();
      },
      Math.max(0, deadline - now),
    );
  }

  private dispatch(queue: Queue<I, O>): void {
    const batch = queue.items.splice(0, queue.maxBatch);
    if (queue.items.length === 0) this.queues.delete(queue.key);
    this.running += 1;
    this.stats.batches += 1;
    this.stats.items += batch.length;
    const size = batch.length;
    Promise.resolve()
      .then(() =>
        this.options.run(
          queue.key,
          batch.map((w) => w.item),
        ),
      )
      .then((outcomes) => {
        if (outcomes.length !== size) {
          throw new Error(`the batch runner answered ${outcomes.length} outcomes for ${size} items`);
        }
        outcomes.forEach((outcome, i) => {
          if (outcome.ok) batch[i]!.resolve({ value: outcome.value, batchSize: size });
          else batch[i]!.reject(outcome.error);
        });
      })
      .catch((error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const waiting of batch) waiting.reject(failure);
      })
      .finally(() => {
        this.running -= 1;
        this.pump();
      });
  }
}
