/**
 * @jest-environment <rootDir>/libs/demo-model/src/ort-test-environment.ts
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import sharp from 'sharp';
import { buildDemoModel, DEMO_LABELS, type DemoModelOptions, type ModelInputSpec } from './demo-classifier';
import { renderSample, type SampleKind } from './samples';

const KINDS: readonly SampleKind[] = DEMO_LABELS;

const sessions: InferenceSession[] = [];
async function load(
  options: DemoModelOptions = {},
): Promise<{ session: InferenceSession; spec: ModelInputSpec; labels: string[] }> {
  const model = buildDemoModel(options);
  const session = await InferenceSession.create(model.onnx);
  sessions.push(session);
  return { session, spec: model.inputSpec, labels: model.labels };
}
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

/** Test-only preprocessing following inputSpec (mean 0, std 1, so just /255). */
async function pixels(image: Buffer, spec: ModelInputSpec): Promise<Float32Array> {
  let pipeline = sharp(image).resize(spec.width, spec.height, { fit: 'fill' });
  pipeline = spec.channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb').removeAlpha();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(spec.channels);
  const hwc = Float32Array.from(data, (p) => p / 255);
  if (spec.layout === 'NHWC' || spec.channels === 1) return hwc;
  const chw = new Float32Array(hwc.length);
  const plane = spec.width * spec.height;
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < spec.channels; c++) chw[c * plane + i] = hwc[i * spec.channels + c] ?? 0;
  return chw;
}

function dims(spec: ModelInputSpec, batch: number): number[] {
  return spec.layout === 'NCHW'
    ? [batch, spec.channels, spec.height, spec.width]
    : [batch, spec.height, spec.width, spec.channels];
}

async function scores(session: InferenceSession, spec: ModelInputSpec, images: Buffer[]): Promise<number[][]> {
  const inputs = await Promise.all(images.map((img) => pixels(img, spec)));
  const data = new Float32Array(inputs.reduce((n, a) => n + a.length, 0));
  inputs.reduce((offset, a) => (data.set(a, offset), offset + a.length), 0);
  const out = await session.run({ image: new Tensor('float32', data, dims(spec, images.length)) });
  const result = out['scores'];
  if (!result) throw new Error('no scores output');
  expect(result.dims).toEqual([images.length, 3]);
  const flat = Array.from(result.data as Float32Array);
  return images.map((_, i) => flat.slice(i * 3, i * 3 + 3));
}

const argmax = (v: number[]): number => v.indexOf(Math.max(...v));
const sum = (v: number[]): number => v.reduce((a, b) => a + b, 0);

const VARIANTS = [
  { width: 256, height: 256, format: 'png' },
  { width: 300, height: 200, format: 'jpeg' },
] as const;
const SEEDS = [0, 1, 2, 42];
const CASES = KINDS.flatMap((kind) => VARIANTS.flatMap((v) => SEEDS.map((seed) => ({ kind, seed, ...v }))));

describe('buildDemoModel', () => {
  it('loads in ONNX Runtime with the documented names, shapes and spec', async () => {
    const { session, spec, labels } = await load();
    expect(session.inputNames).toEqual(['image']);
    expect(session.outputNames).toEqual(['scores']);
    expect(session.inputMetadata[0]).toMatchObject({ isTensor: true, type: 'float32', shape: ['N', 1, 64, 64] });
    expect(session.outputMetadata[0]).toMatchObject({ isTensor: true, type: 'float32', shape: ['N', 3] });
    expect(labels).toEqual(['dark', 'bright', 'striped']);
    expect(spec).toEqual({
      layout: 'NCHW',
      channels: 1,
      width: 64,
      height: 64,
      mean: [0],
      std: [1],
      output: 'probabilities',
    });
  });

  it.each(CASES)(
    'classifies $kind ($width x $height $format, seed $seed)',
    async ({ kind, seed, width, height, format }) => {
      const { session, spec } = await load();
      const [p] = await scores(session, spec, [await renderSample(kind, { seed, width, height, format })]);
      if (!p) throw new Error('missing row');
      expect(DEMO_LABELS[argmax(p)]).toBe(kind);
      expect(sum(p)).toBeCloseTo(1, 5);
      for (const v of p) expect(v).toBeGreaterThanOrEqual(0);
      // Hand-set weights leave a clear margin, not a coin toss.
      expect(Math.max(...p)).toBeGreaterThan(0.9);
    },
  );

  it('logits mode: no Softmax, same argmax, softmax(logits) equals the probabilities', async () => {
    const probs = await load();
    const logits = await load({ output: 'logits' });
    expect(logits.spec.output).toBe('logits');
    for (const kind of KINDS) {
      const img = await renderSample(kind, { seed: 5 });
      const [p] = await scores(probs.session, probs.spec, [img]);
      const [l] = await scores(logits.session, logits.spec, [img]);
      if (!p || !l) throw new Error('missing row');
      expect(DEMO_LABELS[argmax(l)]).toBe(kind);
      expect(Math.abs(sum(l) - 1)).toBeGreaterThan(0.1);
      expect(l.some((v) => v < 0)).toBe(true);
      const e = l.map((v) => Math.exp(v));
      e.forEach((v, i) => expect(v / sum(e)).toBeCloseTo(p[i] ?? NaN, 5));
    }
  });

  it('runs a dynamic batch of 3 in one call', async () => {
    const { session, spec } = await load();
    const images = await Promise.all(KINDS.map((k, i) => renderSample(k, { seed: 10 + i })));
    const rows = await scores(session, spec, images);
    expect(rows.map((r) => DEMO_LABELS[argmax(r)])).toEqual([...KINDS]);
  });

  it('fixedBatch declares batch dimension 1', async () => {
    const { session, spec } = await load({ fixedBatch: true });
    expect(session.inputMetadata[0]).toMatchObject({ shape: [1, 1, 64, 64] });
    expect(session.outputMetadata[0]).toMatchObject({ shape: [1, 3] });
    const [p] = await scores(session, spec, [await renderSample('striped')]);
    expect(argmax(p ?? [])).toBe(2);
  });

  it('labels option changes only the reported labels, not the graph', async () => {
    const { session, labels } = await load({ labels: ['a', 'b'] });
    expect(labels).toEqual(['a', 'b']);
    expect(session.outputMetadata[0]).toMatchObject({ shape: ['N', 3] });
  });

  it.each([
    { layout: 'NHWC', channels: 1 },
    { layout: 'NCHW', channels: 3 },
    { layout: 'NHWC', channels: 3 },
  ] as const)('$layout with $channels channel(s) gives the same scores as NCHW grayscale', async (opts) => {
    const reference = await load();
    const variant = await load(opts);
    expect(variant.spec).toMatchObject({
      ...opts,
      mean: new Array(opts.channels).fill(0),
      std: new Array(opts.channels).fill(1),
    });
    expect(variant.session.inputMetadata[0]).toMatchObject({
      shape: opts.layout === 'NCHW' ? ['N', opts.channels, 64, 64] : ['N', 64, 64, opts.channels],
    });
    const images = await Promise.all(KINDS.map((k) => renderSample(k, { seed: 3, format: 'jpeg' })));
    const expected = await scores(reference.session, reference.spec, images);
    const actual = await scores(variant.session, variant.spec, images);
    actual.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i]?.[j] ?? NaN, 4)));
    expect(actual.map((r) => DEMO_LABELS[argmax(r)])).toEqual([...KINDS]);
  });

  it('accepts a custom input size', async () => {
    const { session, spec } = await load({ width: 128, height: 96 });
    expect(spec).toMatchObject({ width: 128, height: 96 });
    const images = await Promise.all(KINDS.map((k) => renderSample(k, { seed: 4 })));
    const rows = await scores(session, spec, images);
    expect(rows.map((r) => DEMO_LABELS[argmax(r)])).toEqual([...KINDS]);
  });

  it('rejects input sizes the 3x3 convolution cannot handle', () => {
    expect(() => buildDemoModel({ width: 2 })).toThrow(RangeError);
  });
});
