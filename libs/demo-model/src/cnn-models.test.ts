/**
 * @jest-environment <rootDir>/libs/demo-model/src/ort-test-environment.ts
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  buildCnnModel,
  CNN_INPUT_NAME,
  CNN_OUTPUT_NAME,
  gaussianSource,
  type CnnArchitecture,
  type CnnModel,
} from './cnn-models';

// Full-size networks on a shared 2-core machine: a batch of 8 takes seconds.
jest.setTimeout(180_000);

const built = new Map<string, CnnModel>();
/** Each model is built once per file: 7-11 M seeded weights take a few seconds. */
function model(architecture: CnnArchitecture): CnnModel {
  let m = built.get(architecture);
  if (!m) built.set(architecture, (m = buildCnnModel(architecture)));
  return m;
}

const sessions: InferenceSession[] = [];
async function open(onnx: Buffer): Promise<InferenceSession> {
  const session = await InferenceSession.create(onnx, { graphOptimizationLevel: 'all', intraOpNumThreads: 2 });
  sessions.push(session);
  return session;
}
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

/** `count` normalised-looking images: each its own brightness offset and contrast, plus noise. */
function inputs(count: number, channels: number, size: number, seed: number, width = size): Float32Array {
  const normal = gaussianSource(seed);
  const plane = channels * size * width;
  const data = new Float32Array(count * plane);
  for (let b = 0; b < count; b++) {
    const offset = normal();
    const contrast = 0.5 + Math.abs(normal());
    for (let i = 0; i < plane; i++) {
      const y = Math.floor((i % (size * width)) / width) / size;
      data[b * plane + i] = offset + contrast * (y - 0.5) + 0.3 * normal();
    }
  }
  return data;
}

async function run(session: InferenceSession, data: Float32Array, dims: number[]): Promise<Float32Array> {
  const out = await session.run({ [CNN_INPUT_NAME]: new Tensor('float32', data, dims) });
  const result = out[CNN_OUTPUT_NAME];
  if (!result) throw new Error('no output');
  expect(result.dims).toEqual([dims[0], 14]);
  return result.data as Float32Array;
}

describe.each(['resnet18', 'densenet121'] as const)('buildCnnModel(%s)', (architecture) => {
  const channels = architecture === 'resnet18' ? 3 : 1;

  it('is the network it says: the layers of a framework export, input [N, C, 224, 224], output [N, 14]', async () => {
    const m = model(architecture);
    const expected =
      architecture === 'resnet18'
        ? { Conv: 20, BatchNormalization: 20, Relu: 17, MaxPool: 1, Add: 8, GlobalAveragePool: 1, Gemm: 1 }
        : { Conv: 120, BatchNormalization: 121, Relu: 121, MaxPool: 1, AveragePool: 3, GlobalAveragePool: 1, Gemm: 1 };
    expect(m.operators).toMatchObject(expected);
    expect(m.operators.Concat ?? 0).toBe(architecture === 'densenet121' ? 58 - 4 + 4 : 0);
    // torchvision: 11.69 M with 1000 classes (11.18 M without the head), 7.98 M (6.95 M).
    expect(m.parameters).toBeGreaterThan(architecture === 'resnet18' ? 11.1e6 : 6.9e6);
    expect(m.parameters).toBeLessThan(architecture === 'resnet18' ? 11.3e6 : 7.1e6);
    expect(m.inputSpec).toMatchObject({ layout: 'NCHW', channels, width: 224, height: 224, output: 'logits' });
    expect(m.labels).toHaveLength(14);

    const session = await open(m.onnx);
    expect(session.inputNames).toEqual([CNN_INPUT_NAME]);
    expect(session.outputNames).toEqual([CNN_OUTPUT_NAME]);
    expect(session.inputMetadata[0]).toMatchObject({ type: 'float32', shape: ['N', channels, 224, 224] });
    expect(session.outputMetadata[0]).toMatchObject({ type: 'float32', shape: ['N', 14] });
  });

  it('gives each image of a batch of 8 the scores it gets alone, and scores that are not degenerate', async () => {
    const session = await open(model(architecture).onnx);
    const plane = channels * 224 * 224;
    const data = inputs(8, channels, 224, 1);
    const batched = await run(session, data, [8, channels, 224, 224]);
    const rows: Float32Array[] = [];
    for (let b = 0; b < 8; b++) {
      const alone = await run(session, data.slice(b * plane, (b + 1) * plane), [1, channels, 224, 224]);
      alone.forEach((v, j) => expect(Math.abs(v - batched[b * 14 + j]!)).toBeLessThanOrEqual(1e-5));
      rows.push(alone);
    }
    for (const row of rows) {
      for (const v of row) expect(Number.isFinite(v)).toBe(true);
      // The logits spread: neither all equal nor a one-hot softmax.
      const spread = Math.max(...row) - Math.min(...row);
      expect(spread).toBeGreaterThan(0.1);
      expect(spread).toBeLessThan(30);
    }
    // Different images, different scores.
    const distance = rows[0]!.reduce((a, v, j) => a + Math.abs(v - rows[7]![j]!), 0);
    expect(distance).toBeGreaterThan(0.01);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = buildCnnModel(architecture, { width: 64, height: 64, seed: 3 });
    expect(buildCnnModel(architecture, { width: 64, height: 64, seed: 3 }).onnx.equals(a.onnx)).toBe(true);
    expect(buildCnnModel(architecture, { width: 64, height: 64, seed: 4 }).onnx.equals(a.onnx)).toBe(false);
  });
});

describe('buildCnnModel options', () => {
  it('probabilities end with a Softmax, fixedBatch declares batch 1, and channels, size and labels follow the options', async () => {
    const m = buildCnnModel('resnet18', {
      channels: 1,
      width: 96,
      height: 64,
      labels: ['a', 'b', 'c'],
      output: 'probabilities',
      fixedBatch: true,
    });
    expect(m.inputSpec).toMatchObject({ channels: 1, width: 96, height: 64, mean: [0.5], std: [0.25] });
    expect(m.operators.Softmax).toBe(1);
    const session = await open(m.onnx);
    expect(session.inputMetadata[0]).toMatchObject({ shape: [1, 1, 64, 96] });
    const out = await session.run({ [CNN_INPUT_NAME]: new Tensor('float32', inputs(1, 1, 64, 2, 96), [1, 1, 64, 96]) });
    const p = Array.from(out[CNN_OUTPUT_NAME]!.data as Float32Array);
    expect(p).toHaveLength(3);
    expect(p.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
  });

  it('rejects inputs too small for five stride-2 stages, and no labels', () => {
    expect(() => buildCnnModel('densenet121', { width: 16 })).toThrow(RangeError);
    expect(() => buildCnnModel('resnet18', { labels: [] })).toThrow(RangeError);
  });

  it('draws standard normal weights from a seed', () => {
    const normal = gaussianSource(9);
    const xs = Array.from({ length: 20_000 }, () => normal());
    const mean = xs.reduce((a, v) => a + v, 0) / xs.length;
    const variance = xs.reduce((a, v) => a + (v - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
    const again = gaussianSource(9);
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => again()));
  });
});
