// The inference service's model cache against the real pieces: models in a real S3 bucket,
// loaded into a real ONNX Runtime thread pool. Fetches are counted by a spy that calls through to
// the real store, loads and unloads by a thin wrapper around the real pool.
import { createHash } from 'node:crypto';
import { buildDemoModel } from '@cxr/demo-model';
import {
  ModelCache,
  type LoadedModel,
  type ModelLoader,
  type ModelRef,
} from '../../services/inference/src/model-cache';
import { OrtPool, type ModelInfo } from '../../services/inference/src/ort-pool';
import { UnrecoverableJobError } from '../../services/inference/src/errors';
import { createTestBucket, randomName, type TestBucket } from '../support/stack';
import { waitFor } from '../support/wait';

jest.setTimeout(60_000);

const demo = buildDemoModel();
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const image = (level: number) => new Float32Array(64 * 64).fill(level);

/** The real pool, with every load and unload it was asked for recorded (unloads once done). */
class CountingLoader implements ModelLoader {
  readonly loads: string[] = [];
  readonly unloadsAsked: string[] = [];
  readonly unloaded: string[] = [];
  constructor(private readonly pool: OrtPool) {}
  load(handle: string, bytes: Uint8Array): Promise<ModelInfo> {
    this.loads.push(handle);
    return this.pool.load(handle, bytes);
  }
  async unload(handle: string): Promise<void> {
    this.unloadsAsked.push(handle);
    await this.pool.unload(handle);
    this.unloaded.push(handle);
  }
}

/** A promise the test resolves when it chooses: holds a job inside the cache. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

let t: TestBucket;
let pool: OrtPool;
let loader: CountingLoader;
let cache: ModelCache | undefined;
let getBuffer: jest.SpiedFunction<TestBucket['store']['getBuffer']>;

beforeAll(async () => {
  t = await createTestBucket();
  pool = await OrtPool.start({ threads: 2, intraOpThreads: 1 });
});
afterAll(async () => {
  await pool?.close();
  await t?.destroy();
});
beforeEach(() => {
  loader = new CountingLoader(pool);
  getBuffer = jest.spyOn(t.store, 'getBuffer');
});
afterEach(async () => {
  await cache?.close();
  cache = undefined;
  getBuffer.mockRestore();
});

function newCache(capacity: number, maxBytes = 10 * 1024 * 1024): ModelCache {
  cache = new ModelCache(t.store, capacity, maxBytes, loader);
  return cache;
}

/** Stores `bytes` under a fresh key and returns a reference to it, with a fresh model id. */
async function storeModel(bytes: Buffer = demo.onnx, recorded: Buffer = bytes): Promise<ModelRef> {
  const id = randomName('model');
  const key = `models/${id}.onnx`;
  await t.store.put(key, bytes, { contentType: 'application/octet-stream' });
  return { id, key, sha256: sha256(recorded), size: bytes.length };
}

const fetches = (ref: ModelRef) => getBuffer.mock.calls.filter(([key]) => key === ref.key).length;
const handleOf = (c: ModelCache, ref: ModelRef) => c.with(ref, async (m) => m.handle);
/** Runs one image through the pool under `handle`: resolves with its best class, rejects when not loaded. */
async function classify(handle: string, level: number): Promise<number> {
  const run = await pool.run(handle, [image(level)], [1, 64, 64]);
  const result = run.results[0];
  if (!result?.ok) throw new Error(`no scores for ${handle}`);
  const scores = Array.from(result.scores);
  return scores.indexOf(Math.max(...scores));
}

describe('ModelCache', () => {
  it('downloads and loads a model once, runs it, and serves the next job from the cache', async () => {
    const c = newCache(2);
    const ref = await storeModel();
    const first = await c.with(ref, async (model) => {
      expect(model.info).toMatchObject({ inputName: 'image', outputName: 'scores', dynamicBatch: true });
      return { handle: model.handle, best: await classify(model.handle, 0.95) };
    });
    expect(first.best).toBe(1); // 'bright'
    expect(await handleOf(c, ref)).toBe(first.handle);
    expect(fetches(ref)).toBe(1);
    expect(loader.loads).toEqual([first.handle]);
    expect({ hits: c.hits, misses: c.misses, size: c.size }).toEqual({ hits: 1, misses: 1, size: 1 });
  });

  it('shares one download and one load among concurrent jobs for the same model', async () => {
    const c = newCache(2);
    const ref = await storeModel();
    const handles = await Promise.all([handleOf(c, ref), handleOf(c, ref), handleOf(c, ref)]);
    expect(new Set(handles).size).toBe(1);
    expect(fetches(ref)).toBe(1);
    expect(loader.loads).toHaveLength(1);
    expect({ hits: c.hits, misses: c.misses }).toEqual({ hits: 2, misses: 1 });
  });

  it('evicts the least recently used model beyond its capacity and releases its sessions', async () => {
    const c = newCache(2);
    const [a, b, d] = [await storeModel(), await storeModel(), await storeModel()];
    const handleA = await handleOf(c, a);
    const handleB = await handleOf(c, b);
    await handleOf(c, a); // a is now more recently used than b
    const handleD = await handleOf(c, d); // over capacity: b goes
    expect(c.size).toBe(2);

    await waitFor('the evicted model to be unloaded', () => loader.unloaded.includes(handleB));
    expect(loader.unloadsAsked).toEqual([handleB]);
    await expect(classify(handleB, 0.5)).rejects.toThrow(/not loaded/);
    expect(await classify(handleA, 0.05)).toBe(0);
    expect(await classify(handleD, 0.05)).toBe(0);

    // b again: downloaded and loaded anew, under a handle its old sessions never had.
    const handleB2 = await handleOf(c, b);
    expect(handleB2).not.toBe(handleB);
    expect(fetches(b)).toBe(2);
    expect(fetches(a)).toBe(1);
    // That evicted a (least recently used now), not d.
    await waitFor('a to be unloaded', () => loader.unloaded.includes(handleA));
    expect(loader.unloadsAsked).toEqual([handleB, handleA]);
  });

  it('keeps an evicted model loaded while jobs use it and releases it when the last one finishes', async () => {
    const c = newCache(1);
    const [a, b] = [await storeModel(), await storeModel()];
    const first = gate();
    const second = gate();
    const inside: string[] = [];
    const hold = (g: ReturnType<typeof gate>) =>
      c.with(a, async (model: LoadedModel) => {
        inside.push(model.handle);
        await g.opened;
        return classify(model.handle, 0.95);
      });
    const jobs = [hold(first), hold(second)];
    const [handleA] = await waitFor(
      'both jobs to hold model a',
      () => inside,
      (v) => v.length === 2,
    );

    await handleOf(c, b); // capacity 1: a is evicted while both jobs hold it
    expect(c.size).toBe(1);
    expect(loader.unloadsAsked).toEqual([]);

    first.open();
    expect(await jobs[0]).toBe(1); // ran on a's sessions, still loaded
    // The first job's release would have asked for the unload before its promise settled.
    expect(loader.unloadsAsked).toEqual([]);
    expect(await classify(handleA!, 0.05)).toBe(0);

    second.open();
    expect(await jobs[1]).toBe(1);
    await waitFor('a to be unloaded once its last job finished', () => loader.unloaded.includes(handleA!));
    expect(loader.unloadsAsked).toEqual([handleA]);
    await expect(classify(handleA!, 0.5)).rejects.toThrow(/not loaded/);
  });

  it('answers MODEL_MISSING for a model not in storage, forgets the failure, and tries again', async () => {
    const c = newCache(2);
    const ref = await storeModel();
    await t.store.delete(ref.key);
    const use = jest.fn(async () => 'ran');

    const missing = c.with(ref, use);
    await expect(missing).rejects.toBeInstanceOf(UnrecoverableJobError);
    await expect(missing).rejects.toMatchObject({ code: 'MODEL_MISSING' });
    await expect(missing).rejects.toThrow(ref.key);
    expect(use).not.toHaveBeenCalled();
    expect(loader.loads).toEqual([]);
    expect(c.size).toBe(0);

    await t.store.put(ref.key, demo.onnx, { contentType: 'application/octet-stream' });
    await expect(c.with(ref, use)).resolves.toBe('ran');
    expect(fetches(ref)).toBe(2);
    expect(loader.loads).toHaveLength(1);
    expect(c.size).toBe(1);
  });

  it('answers MODEL_INTEGRITY for a model whose bytes do not match the recorded sha256, and never loads it', async () => {
    const c = newCache(2);
    const altered = Buffer.from(demo.onnx);
    altered.writeUInt8(altered.readUInt8(altered.length - 1) ^ 0xff, altered.length - 1);
    const ref = await storeModel(altered, demo.onnx);
    const use = jest.fn(async () => 'ran');

    const refused = c.with(ref, use);
    await expect(refused).rejects.toMatchObject({ name: 'UnrecoverableJobError', code: 'MODEL_INTEGRITY' });
    await expect(refused).rejects.toThrow(/does not match its recorded sha256/);
    expect(use).not.toHaveBeenCalled();
    expect(loader.loads).toEqual([]);
    expect(c.size).toBe(0);
  });

  it('answers MODEL_LOAD when ONNX Runtime refuses the model, and tries again on the next job', async () => {
    const c = newCache(2);
    const ref = await storeModel(Buffer.from('not an onnx model'));
    const use = jest.fn(async () => 'ran');

    const refused = c.with(ref, use);
    await expect(refused).rejects.toMatchObject({ name: 'UnrecoverableJobError', code: 'MODEL_LOAD' });
    await expect(refused).rejects.toThrow(/^ONNX Runtime cannot load the model: /);
    expect(use).not.toHaveBeenCalled();
    expect(c.size).toBe(0);
    await expect(c.with(ref, use)).rejects.toMatchObject({ code: 'MODEL_LOAD' });
    expect(fetches(ref)).toBe(2);
    expect(loader.loads).toHaveLength(2);
  });

  it("answers MODEL_TOO_LARGE for a model above the worker's limit", async () => {
    const c = newCache(2, demo.onnx.length - 1);
    const ref = await storeModel();
    await expect(c.with(ref, async () => 'ran')).rejects.toMatchObject({ code: 'MODEL_TOO_LARGE' });
    expect(loader.loads).toEqual([]);
  });

  it('releases every loaded model on close', async () => {
    const c = newCache(3);
    const [a, b] = [await storeModel(), await storeModel()];
    const handles = [await handleOf(c, a), await handleOf(c, b)];
    await c.close();
    expect(c.size).toBe(0);
    expect([...loader.unloaded].sort()).toEqual([...handles].sort());
    await expect(classify(handles[0]!, 0.5)).rejects.toThrow(/not loaded/);
    await expect(classify(handles[1]!, 0.5)).rejects.toThrow(/not loaded/);
  });
});
