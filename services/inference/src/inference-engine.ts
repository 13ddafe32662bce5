import { MicroBatcher, type BatchClock, type Settled } from './batcher';
import type { ModelInfo, OrtPool } from './ort-pool';

/** ONNX Runtime refused to run this image (its answer, not a crash): the job can never succeed as sent. */
export class InferenceRunError extends Error {
  override readonly name = 'InferenceRunError';
}

/** A model loaded into the pool under a handle unique to this load. */
export interface EngineModel {
  handle: string;
  info: ModelInfo;
}

export interface Inferred {
  scores: Float32Array | Float64Array;
  /** Images in the run this one was part of. */
  batchSize: number;
}

export interface InferenceEngineOptions {
  /** Largest batch for a model whose batch dimension is dynamic. */
  maxBatch: number;
  /** How long the first image of a batch waits for others (ms). */
  batchWaitMs: number;
  clock?: BatchClock;
  /** Told once per model whose batched run failed or was not one row per image; it runs alone from then on. */
  onBatchRefused?: (handle: string, reason: string) => void;
  /** Told the size of each batch as it starts running. */
  onBatch?: (size: number) => void;
}

interface Item {
  handle: string;
  input: Float32Array;
  itemDims: number[];
}

/**
 * Inference as the jobs see it: one image in, its scores out. Underneath, images of the same
 * model and shape are batched across jobs (MicroBatcher) and run on the ORT thread pool; each
 * job gets its own row back. The input array is handed over (transferred to a thread).
 */
export class InferenceEngine {
  private readonly batcher: MicroBatcher<Item, Float32Array | Float64Array>;
  /** Models that turned out not to batch; their images go one at a time. */
  private readonly alone = new Set<string>();

  constructor(
    private readonly pool: Pick<OrtPool, 'load' | 'unload' | 'run' | 'threads'>,
    private readonly options: InferenceEngineOptions,
  ) {
    this.batcher = new MicroBatcher({
      run: (_key, items) => this.runBatch(items),
      maxWaitMs: options.batchWaitMs,
      capacity: pool.threads,
      clock: options.clock,
    });
  }

  get stats(): { batches: number; images: number; waiting: number } {
    return { batches: this.batcher.stats.batches, images: this.batcher.stats.items, waiting: this.batcher.waiting };
  }

  load(handle: string, bytes: Uint8Array): Promise<ModelInfo> {
    return this.pool.load(handle, bytes);
  }

  async unload(handle: string): Promise<void> {
    this.alone.delete(handle);
    await this.pool.unload(handle);
  }

  /**
   * Scores of one image (`input`, of dimensions `itemDims`, no batch dimension). Rejects with
   * InferenceRunError when ONNX Runtime refused the image, with ThreadDiedError when the thread
   * running its batch died.
   */
  async infer(model: EngineModel, input: Float32Array, itemDims: number[]): Promise<Inferred> {
    const batchable = model.info.dynamicBatch && !this.alone.has(model.handle);
    const key = `${model.handle}|${itemDims.join('x')}`;
    const { value, batchSize } = await this.batcher.submit(key, batchable ? this.options.maxBatch : 1, {
      handle: model.handle,
      input,
      itemDims,
    });
    return { scores: value, batchSize };
  }

  private async runBatch(items: Item[]): Promise<Settled<Float32Array | Float64Array>[]> {
    const { handle, itemDims } = items[0]!;
    this.options.onBatch?.(items.length);
    const run = await this.pool.run(
      handle,
      items.map((i) => i.input),
      itemDims,
    );
    if (run.batchRefused && !this.alone.has(handle)) {
      this.alone.add(handle);
      this.options.onBatchRefused?.(handle, run.batchRefused);
    }
    return run.results.map((r) =>
      r.ok ? { ok: true, value: r.scores } : { ok: false, error: new InferenceRunError(r.message) },
    );
  }
}
