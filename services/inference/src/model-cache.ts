import type { ObjectStore } from '@cxr/storage';
import { fetchVerified } from './verified-blob';
import { UnrecoverableJobError } from './errors';
import type { EngineModel } from './inference-engine';
import { ModelLoadError, type ModelInfo } from './ort-pool';

export interface ModelRef {
  id: string;
  key: string;
  sha256: string;
  size: number;
}

/** A model loaded into the ONNX Runtime threads, under a handle unique to this load. */
export type LoadedModel = EngineModel;

/** Where sessions live (the inference engine's thread pool). */
export interface ModelLoader {
  /** Rejects with ModelLoadError when ONNX Runtime refuses the model. */
  load(handle: string, bytes: Uint8Array): Promise<ModelInfo>;
  unload(handle: string): Promise<void>;
}

interface Entry {
  loading: Promise<LoadedModel>;
  /** Jobs using the session now; an evicted session is released when this drops to 0. */
  users: number;
  evicted: boolean;
}

/**
 * Models loaded into the ONNX Runtime threads, by model id, least recently used evicted.
 * Concurrent jobs for a model share one download and load. The blob is checked against the
 * sha256 recorded at upload, so a model changed in S3 behind the gateway's back is refused, not
 * run. A model's sessions are released only when it is evicted and no job is using it (a job
 * waiting for its batch counts as using it).
 */
export class ModelCache {
  private readonly entries = new Map<string, Entry>();
  private loads = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly capacity: number,
    private readonly maxBytes: number,
    private readonly loader: ModelLoader,
    /** Told the id of each model evicted (its per-model metrics go with it). */
    private readonly onEvict: (id: string) => void = () => undefined,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** Runs `use` with the model's session, loading it first when needed. */
  async with<T>(ref: ModelRef, use: (model: LoadedModel) => Promise<T>): Promise<T> {
    let entry = this.entries.get(ref.id);
    if (entry) {
      this.hits += 1;
      // Re-insert to mark it most recently used.
      this.entries.delete(ref.id);
      this.entries.set(ref.id, entry);
    } else {
      this.misses += 1;
      const created: Entry = { loading: this.load(ref), users: 0, evicted: false };
      entry = created;
      this.entries.set(ref.id, created);
      // A failed load is forgotten (only this entry, not a newer one for the same id).
      created.loading.catch(() => {
        if (this.entries.get(ref.id) === created) this.entries.delete(ref.id);
      });
      this.evictBeyondCapacity();
    }
    entry.users += 1;
    try {
      return await use(await entry.loading);
    } finally {
      entry.users -= 1;
      if (entry.evicted && entry.users === 0) this.release(entry);
    }
  }

  private evictBeyondCapacity(): void {
    while (this.entries.size > this.capacity) {
      const [oldestId, oldest] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldestId);
      oldest.evicted = true;
      this.evictions += 1;
      this.onEvict(oldestId);
      if (oldest.users === 0) this.release(oldest);
    }
  }

  private release(entry: Entry): void {
    entry.loading.then(
      (model) => void this.loader.unload(model.handle).catch(() => undefined),
      () => undefined,
    );
  }

  private async load(ref: ModelRef): Promise<LoadedModel> {
    const bytes = await fetchVerified(this.store, ref, this.maxBytes, {
      code: 'MODEL',
      missing: `model file ${ref.key} is not in storage`,
      tooLarge: "the model is larger than this worker's MAX_MODEL_BYTES",
      corrupt: `model file ${ref.key} does not match its recorded sha256`,
    });
    // A handle per load: a model evicted and loaded again never meets its old sessions.
    const handle = `${ref.id}#${++this.loads}`;
    try {
      return { handle, info: await this.loader.load(handle, bytes) };
    } catch (error) {
      if (error instanceof ModelLoadError) {
        throw new UnrecoverableJobError(
          'MODEL_LOAD',
          `ONNX Runtime cannot load the model: ${error.message.split('\n')[0]}`,
        );
      }
      throw error; // a thread that died while loading: try again
    }
  }

  /** Releases every session; called after the broker has drained in-flight jobs. */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) {
      try {
        await this.loader.unload((await entry.loading).handle);
      } catch {
        // a failed load has nothing to release
      }
    }
  }
}
