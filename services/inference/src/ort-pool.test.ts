import { buildCnnModel, buildDemoModel, encodeModel, TensorDataType } from '@cxr/demo-model';
import { ModelLoadError, OrtPool, ThreadDiedError, type ItemResult } from './ort-pool';

jest.setTimeout(60_000);

const demo = buildDemoModel();
const fixed = buildDemoModel({ fixedBatch: true });
/** Input [N, 2], output Flatten(axis 0): [1, 2N]. Dynamic in name, but not one row per image. */
const notBatchMajor = encodeModel({
  graph: {
    name: 'flatten_all',
    nodes: [
      {
        opType: 'Flatten',
        inputs: ['x'],
        outputs: ['y'],
        attributes: [{ name: 'axis', type: 'int', value: 0 }],
      },
    ],
    inputs: [{ name: 'x', elemType: TensorDataType.FLOAT, shape: ['N', 2] }],
    outputs: [{ name: 'y', elemType: TensorDataType.FLOAT, shape: [1, 'M'] }],
  },
});

const image = (level: number) => new Float32Array(64 * 64).fill(level);
const scores = (r: ItemResult | undefined): number[] => {
  if (!r?.ok) throw new Error(`no scores: ${r && !r.ok ? r.message : 'missing'}`);
  return Array.from(r.scores);
};
const argmax = (v: number[]) => v.indexOf(Math.max(...v));

let pool: OrtPool;
afterEach(async () => {
  await pool?.close();
});

describe('OrtPool', () => {
  it('loads a model in every thread and runs a batch there, the inputs transferred', async () => {
    pool = await OrtPool.start({ threads: 2, intraOpThreads: 1 });
    const info = await pool.load('demo#1', demo.onnx);
    expect(info).toEqual({
      inputName: 'image',
      outputName: 'scores',
      inputShape: ['N', 1, 64, 64],
      dynamicBatch: true,
    });
    const inputs = [image(0.05), image(0.95), image(0.1)];
    const run = await pool.run('demo#1', inputs, [1, 64, 64]);
    expect(run.batchRefused).toBeUndefined();
    expect(run.results.map((r) => argmax(scores(r)))).toEqual([0, 1, 0]);
    // Transferred, not copied: the caller's arrays are detached.
    for (const input of inputs) expect(input.byteLength).toBe(0);
    expect(pool.stats).toMatchObject({ runs: 1, images: 3 });

    // Each thread has the model: two runs at once both succeed.
    const [a, b] = await Promise.all([
      pool.run('demo#1', [image(0.9)], [1, 64, 64]),
      pool.run('demo#1', [image(0.9)], [1, 64, 64]),
    ]);
    expect(argmax(scores(a.results[0]))).toBe(1);
    expect(argmax(scores(b.results[0]))).toBe(1);
  });

  it('says whether the batch dimension is dynamic', async () => {
    pool = await OrtPool.start({ threads: 1, intraOpThreads: 1 });
    expect(await pool.load('fixed#1', fixed.onnx)).toMatchObject({ inputShape: [1, 1, 64, 64], dynamicBatch: false });
  });

  it('refuses a model ONNX Runtime cannot load with ModelLoadError, and forgets it', async () => {
    pool = await OrtPool.start({ threads: 2, intraOpThreads: 1 });
    await expect(pool.load('bad#1', Buffer.from('not a model'))).rejects.toBeInstanceOf(ModelLoadError);
    await expect(pool.run('bad#1', [image(0.5)], [1, 64, 64])).rejects.toThrow(/not loaded/);
  });

  it('answers an image that ONNX Runtime cannot run with its error, not a rejection', async () => {
    pool = await OrtPool.start({ threads: 1, intraOpThreads: 1 });
    await pool.load('demo#1', demo.onnx);
    // The right number of values in the wrong shape: ONNX Runtime refuses the run itself.
    const run = await pool.run('demo#1', [image(0.5)], [1, 32, 128]);
    expect(run.results).toHaveLength(1);
    const [result] = run.results;
    expect(result?.ok).toBe(false);
    expect(result && !result.ok && result.message).toMatch(/dimension|shape/i);
  });

  it('runs the images one by one when a "dynamic" model does not give one row per image', async () => {
    pool = await OrtPool.start({ threads: 1, intraOpThreads: 1 });
    expect(await pool.load('flat#1', notBatchMajor)).toMatchObject({ dynamicBatch: true });
    const run = await pool.run('flat#1', [Float32Array.of(1, 2), Float32Array.of(3, 4)], [2]);
    expect(run.batchRefused).toMatch(/output dims \[1, 4\]/);
    expect(run.results.map(scores)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it('fails only the run of a thread that died, and replaces the thread with the models loaded', async () => {
    const exits: number[] = [];
    pool = await OrtPool.start({ threads: 2, intraOpThreads: 1, onThreadExit: ({ thread }) => exits.push(thread) });
    await pool.load('demo#1', demo.onnx);
    pool.crashThread(0);
    // The first idle thread takes the first run: thread 0, which dies with it; thread 1 is unharmed.
    const doomed = pool.run('demo#1', [image(0.9)], [1, 64, 64]);
    const spared = pool.run('demo#1', [image(0.9)], [1, 64, 64]);
    await expect(doomed).rejects.toBeInstanceOf(ThreadDiedError);
    expect(argmax(scores((await spared).results[0]))).toBe(1);
    expect(exits).toEqual([0]);
    expect(pool.stats.threadRestarts).toBe(1);
    // The replacement has the model: both threads answer again.
    const again = await Promise.all([0.05, 0.95].map((l) => pool.run('demo#1', [image(l)], [1, 64, 64])));
    expect(again.map((r) => argmax(scores(r.results[0])))).toEqual([0, 1]);
  });

  it('keeps the event loop turning while a long run is in progress', async () => {
    pool = await OrtPool.start({ threads: 1, intraOpThreads: 1 });
    const resnet = buildCnnModel('resnet18', { labels: ['a', 'b'] });
    await pool.load('resnet#1', resnet.onnx);
    const inputs = Array.from({ length: 8 }, () => new Float32Array(3 * 224 * 224).fill(0.2));
    // Turns of the main thread's event loop while ONNX Runtime runs a batch of 8: a run on the
    // main thread would block it from start to end, and none would happen before it resolved.
    let turns = 0;
    let counting = true;
    const turn = () => {
      if (!counting) return;
      turns += 1;
      setImmediate(turn);
    };
    setImmediate(turn);
    const run = await pool.run('resnet#1', inputs, [3, 224, 224]);
    counting = false;
    expect(run.results.every((r) => r.ok)).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(10);
  });

  it('unloads a model from every thread', async () => {
    pool = await OrtPool.start({ threads: 2, intraOpThreads: 1 });
    await pool.load('demo#1', demo.onnx);
    await pool.unload('demo#1');
    await expect(pool.run('demo#1', [image(0.5)], [1, 64, 64])).rejects.toThrow(/not loaded/);
  });
});
