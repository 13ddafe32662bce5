import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
// Loads ONNX Runtime's native addon in the main thread too, and keeps it: the addon registers
// itself only on its first load in the process, so once every thread that had loaded it was
// gone, a new thread could not load it again ("Module did not self-register"). Held here, a
// replacement thread always can. No session is made in the main thread.
import 'onnxruntime-node';
import type { FromThread, ItemResult, ModelInfo, SessionSettings, ToThread } from './ort-protocol';

export type { ItemResult, ModelInfo } from './ort-protocol';

/** ONNX Runtime refused the model: it will refuse it again. */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}

/** The thread running a request ended before answering (a crash, not an answer about the input). */
export class ThreadDiedError extends Error {
  override readonly name = 'ThreadDiedError';
}

export interface OrtPoolOptions {
  /** Threads, each with its own session of every loaded model. */
  threads: number;
  /** ONNX Runtime's intra-op threads per session. */
  intraOpThreads: number;
  /** ORT's spin-waiting between ops; off by default, since decoding wants the cores too. */
  allowSpinning?: boolean;
  /** Told about each thread that died and was replaced. */
  onThreadExit?: (info: { thread: number; code: number; error?: Error }) => void;
}

export interface RunResult {
  results: ItemResult[];
  runMs: number;
  batchRefused?: string;
}

/** A message to a thread before the pool numbers it. */
type Request = ToThread extends infer M ? (M extends { id: number } ? Omit<M, 'id'> : never) : never;

interface Pending {
  resolve: (message: FromThread) => void;
  reject: (error: Error) => void;
}

interface Slot {
  index: number;
  worker: Worker;
  pending: Map<number, Pending>;
  /** A run is out on this thread. */
  busy: boolean;
  alive: boolean;
}

interface QueuedRun {
  message: Extract<Request, { type: 'run' }>;
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

/**
 * How a thread starts: the services run TypeScript through tsx, and a worker thread starts
 * with a bare module loader (and under Jest with none of tsx's hooks at all), so it registers
 * tsx's CommonJS hook first. From compiled JavaScript it loads the .js entry directly.
 */
function threadSource(): string {
  const entry = join(__dirname, `ort-thread${extname(__filename)}`);
  const hook = extname(__filename) === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});` : '';
  return `${hook}require(${JSON.stringify(entry)});`;
}

/**
 * A fixed set of ONNX Runtime threads (worker_threads). Every thread holds a session of every
 * loaded model, so any idle thread can take any model's next batch: with a handful of models
 * and a pool the size of the cores, threads never sit idle while another model has work, and
 * the cores are never oversubscribed by a pool per model. The cost is one session (weights)
 * per thread per model.
 *
 * Runs go to idle threads only, one at a time per thread; the rest wait here in order.
 * Input arrays are transferred, not copied (they are detached in the caller afterwards). A
 * thread that dies fails only the requests it had (ThreadDiedError) and is replaced at once,
 * with every loaded model loaded into it before it takes a run.
 */
export class OrtPool {
  private readonly slots: Slot[] = [];
  private readonly models = new Map<string, Uint8Array>();
  private readonly queue: QueuedRun[] = [];
  private nextId = 1;
  private closed = false;
  readonly stats = { runs: 0, images: 0, threadRestarts: 0 };

  private constructor(
    private readonly options: OrtPoolOptions,
    private readonly source: string,
  ) {}

  /** Starts the threads and waits until each has loaded ONNX Runtime. */
  static async start(options: OrtPoolOptions): Promise<OrtPool> {
    if (!(options.threads >= 1 && options.intraOpThreads >= 1)) {
      throw new RangeError('an ORT pool needs at least one thread of at least one intra-op thread');
    }
    const pool = new OrtPool(options, threadSource());
    try {
      await Promise.all(Array.from({ length: options.threads }, (_, i) => pool.spawn(i)));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get threads(): number {
    return this.options.threads;
  }

  get busyThreads(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  private spawn(index: number): Promise<void> {
    const settings: SessionSettings = {
      intraOpNumThreads: this.options.intraOpThreads,
      allowSpinning: this.options.allowSpinning ?? false,
    };
    // execArgv []: the thread sets up its own loader (see threadSource), whatever the process was started with.
    const worker = new Worker(this.source, { eval: true, workerData: settings, execArgv: [] });
    const slot: Slot = { index, worker, pending: new Map(), busy: false, alive: true };
    this.slots[index] = slot;
    let lastError: Error | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromThread) => {
        if (message.type === 'ready') {
          resolve();
          return;
        }
        const pending = slot.pending.get(message.id);
        if (!pending) return;
        slot.pending.delete(message.id);
        pending.resolve(message);
      });
      worker.on('error', (error: Error) => {
        lastError = error;
      });
      worker.once('exit', (code: number) => {
        slot.alive = false;
        const error = new ThreadDiedError(
          `ONNX Runtime thread ${index} ended (exit code ${code})${lastError ? `: ${lastError.message}` : ''}`,
        );
        reject(error);
        for (const pending of slot.pending.values()) pending.reject(error);
        slot.pending.clear();
        if (this.closed || this.slots[index] !== slot) return;
        this.stats.threadRestarts += 1;
        this.options.onThreadExit?.({ thread: index, code, error: lastError });
        this.replace(index);
      });
    });
    // Every loaded model goes into a new thread before anything else; messages are handled in order.
    for (const [handle, bytes] of this.models) {
      void this.request(slot, { type: 'load', handle, bytes: bytes.slice() }).catch(() => undefined);
    }
    return ready;
  }

  private replace(index: number): void {
    this.spawn(index).then(
      () => this.pump(),
      () => undefined, // it died too; its own exit handler replaced it again
    );
  }

  private request(slot: Slot, message: Request, transfer: ArrayBuffer[] = []): Promise<FromThread> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!slot.alive) {
        reject(new ThreadDiedError(`ONNX Runtime thread ${slot.index} is not running`));
        return;
      }
      slot.pending.set(id, { resolve, reject });
      const numbered: ToThread = { ...message, id };
      slot.worker.postMessage(numbered, transfer);
    });
  }

  /**
   * Loads a model into every thread (a copy each) and keeps its bytes to load it into
   * replacement threads. Rejects with ModelLoadError when ONNX Runtime refuses it.
   */
  async load(handle: string, bytes: Uint8Array): Promise<ModelInfo> {
    if (this.closed) throw new Error('the ORT pool is closed');
    const own = bytes.slice(); // the caller may reuse its buffer; threads each get a copy of this
    this.models.set(handle, own);
    try {
      const replies = await Promise.all(
        this.slots.map((slot) => this.request(slot, { type: 'load', handle, bytes: own.slice() })),
      );
      const first = replies[0]!;
      for (const reply of replies) {
        if (reply.type === 'failed') throw new ModelLoadError(reply.message);
      }
      if (first.type !== 'loaded') throw new Error(`unexpected reply ${first.type} to a load`);
      return first.info;
    } catch (error) {
      await this.unload(handle);
      throw error;
    }
  }

  /** Releases a model's sessions in every thread. */
  async unload(handle: string): Promise<void> {
    this.models.delete(handle);
    await Promise.all(this.slots.map((slot) => this.request(slot, { type: 'unload', handle }).catch(() => undefined)));
  }

  /**
   * Runs one batch (the inputs are transferred to the thread: detached here). Resolves with one
   * result per input, each an output or the error ONNX Runtime gave; rejects only when the
   * thread died (ThreadDiedError) or the pool closed.
   */
  run(handle: string, inputs: Float32Array[], itemDims: number[]): Promise<RunResult> {
    if (this.closed) return Promise.reject(new Error('the ORT pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ message: { type: 'run', handle, inputs, itemDims }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.alive || slot.busy) continue;
      const job = this.queue.shift()!;
      slot.busy = true;
      // Each buffer once (views may share one); a SharedArrayBuffer is shared, not transferred.
      // Not `instanceof`: under Jest the arrays may come from another realm.
      const buffers = [...new Set(job.message.inputs.map((a) => a.buffer))].filter(
        (b): b is ArrayBuffer => Object.prototype.toString.call(b) === '[object ArrayBuffer]',
      );
      this.request(slot, job.message, buffers)
        .then((reply) => {
          if (reply.type === 'failed') throw new Error(reply.message);
          if (reply.type !== 'ran') throw new Error(`unexpected reply ${reply.type} to a run`);
          this.stats.runs += 1;
          this.stats.images += reply.results.length;
          job.resolve({ results: reply.results, runMs: reply.runMs, batchRefused: reply.batchRefused });
        })
        .catch((error: Error) => job.reject(error))
        .finally(() => {
          slot.busy = false;
          this.pump();
        });
    }
  }

  /** Test hook: makes a thread throw outside any request, as a bug in it would. */
  crashThread(index: number): void {
    const slot = this.slots[index];
    if (slot) void this.request(slot, { type: 'crash' }).catch(() => undefined);
  }

  /** Ends every thread; queued and running requests are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the ORT pool is closed'));
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}
