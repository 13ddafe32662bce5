import { buildDemoModel, encodeModel, TensorDataType } from '@cxr/demo-model';
import { InferenceEngine, InferenceRunError, type EngineModel, type Inferred } from './inference-engine';
import { OrtPool } from './ort-pool';

jest.setTimeout(60_000);

const image = (level: number) => new Float32Array(64 * 64).fill(level);
const DIMS = [1, 64, 64];

let pool: OrtPool;
afterEach(async () => {
  await pool?.close();
});

async function setup(maxBatch = 4) {
  pool = await OrtPool.start({ threads: 1, intraOpThreads: 1 });
  const refused: string[] = [];
  const engine = new InferenceEngine(pool, {
    maxBatch,
    batchWaitMs: 5,
    onBatchRefused: (handle) => refused.push(handle),
  });
  const load = async (handle: string, onnx: Uint8Array): Promise<EngineModel> => ({
    handle,
    info: await engine.load(handle, onnx),
  });
  return { engine, refused, load };
}

describe('InferenceEngine', () => {
  it('runs concurrent images of one model as batches, each image getting its own scores', async () => {
    const { engine, load } = await setup(4);
    const model = await load('demo#1', buildDemoModel().onnx);
    const levels = [0.05, 0.95, 0.1, 0.9, 0.5];
    const alone: Inferred[] = [];
    for (const l of levels) alone.push(await engine.infer(model, image(l), DIMS));
    expect(alone.map((a) => a.batchSize)).toEqual([1, 1, 1, 1, 1]);

    const together = await Promise.all(levels.map((l) => engine.infer(model, image(l), DIMS)));
    // Four fill a batch at once; the fifth waits for the only thread and runs alone.
    expect(together.map((t) => t.batchSize)).toEqual([4, 4, 4, 4, 1]);
    together.forEach((t, i) => Array.from(t.scores).forEach((v, j) => expect(v).toBeCloseTo(alone[i]!.scores[j]!, 5)));
    expect(engine.stats).toMatchObject({ images: 10, batches: 7, waiting: 0 });
  });

  it('never batches a model whose batch dimension is fixed', async () => {
    const { engine, load } = await setup(4);
    const model = await load('fixed#1', buildDemoModel({ fixedBatch: true }).onnx);
    const results = await Promise.all([0.1, 0.9, 0.5].map((l) => engine.infer(model, image(l), DIMS)));
    expect(results.map((r) => r.batchSize)).toEqual([1, 1, 1]);
  });

  it('answers an image ONNX Runtime refuses with InferenceRunError', async () => {
    const { engine, load } = await setup();
    const model = await load('demo#1', buildDemoModel().onnx);
    await expect(engine.infer(model, image(0.5), [1, 32, 128])).rejects.toBeInstanceOf(InferenceRunError);
  });

  it('runs a model alone from the first batch it did not answer row by row', async () => {
    const { engine, refused, load } = await setup(4);
    const model = await load(
      'flat#1',
      encodeModel({
        graph: {
          name: 'flatten_all',
          nodes: [
            { opType: 'Flatten', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', type: 'int', value: 0 }] },
          ],
          inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: ['N', 2] }],
          outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, shape: [1, 'M'] }],
        },
      }),
    );
    const first = await Promise.all([1, 2].map((v) => engine.infer(model, Float32Array.of(v, v), [2])));
    expect(first.map((r) => Array.from(r.scores))).toEqual([
      [1, 1],
      [2, 2],
    ]);
    expect(refused).toEqual(['flat#1']);
    const later = await Promise.all([3, 4].map((v) => engine.infer(model, Float32Array.of(v, v), [2])));
    expect(later.map((r) => r.batchSize)).toEqual([1, 1]);
  });
});
