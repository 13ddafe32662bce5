import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import { ObjectNotFoundError, type ObjectStore } from '@cxr/storage';
import { UnrecoverableJobError } from './errors';

export interface ModelRef {
  id: string;
  key: string;
  sha256: string;
  size: number;
}

export interface LoadedModel {
  session: ort.InferenceSession;
  inputName: string;
  outputName: string;
}

/**
 * Loaded ONNX sessions by model id, least recently used evicted. Concurrent jobs for a model
 * share one download and load. The blob is checked against the sha256 recorded at upload, so
 * a model changed in S3 behind the gateway's back is refused, not run.
 */
export class ModelCache {
  private readonly entries = new Map<string, Promise<LoadedModel>>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly capacity: number,
    private readonly maxBytes: number,
    private readonly intraOpThreads: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  async get(ref: ModelRef): Promise<LoadedModel> {
    const cached = this.entries.get(ref.id);
    if (cached) {
      this.hits += 1;
      // Re-insert to mark it most recently used.
      this.entries.delete(ref.id);
      this.entries.set(ref.id, cached);
      return cached;
    }
    this.misses += 1;
    const loading = this.load(ref);
    this.entries.set(ref.id, loading);
    loading.catch(() => this.entries.delete(ref.id));
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      const evicted = this.entries.get(oldest);
      this.entries.delete(oldest);
      // In-flight runs hold their own reference; release after they are likely done.
      void evicted?.then((m) => setTimeout(() => void m.session.release().catch(() => undefined), 30_000).unref());
    }
    return loading;
  }

  private async load(ref: ModelRef): Promise<LoadedModel> {
    let bytes: Buffer;
    try {
      bytes = await this.store.getBuffer(ref.key, this.maxBytes);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        throw new UnrecoverableJobError('MODEL_MISSING', `model file ${ref.key} is not in storage`);
      }
      throw error;
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== ref.sha256) {
      throw new UnrecoverableJobError('MODEL_INTEGRITY', `model file ${ref.key} does not match its recorded sha256`);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: this.intraOpThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (error) {
      throw new UnrecoverableJobError(
        'MODEL_LOAD',
        `ONNX Runtime cannot load the model: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    return { session, inputName: session.inputNames[0]!, outputName: session.outputNames[0]! };
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) {
      try {
        await (await entry).session.release();
      } catch {
        // a failed load has nothing to release
      }
    }
  }
}
