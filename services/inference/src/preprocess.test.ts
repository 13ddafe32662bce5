import sharp from 'sharp';
import type { InputSpec } from '@cxr/contracts';
import { renderXray } from '@cxr/demo-model';
import { preprocess } from './preprocess';

async function png(width: number, height: number, channels: 1 | 3, pixel: (x: number, y: number, c: number) => number) {
  const raw = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) raw[(y * width + x) * channels + c] = pixel(x, y, c);
  return sharp(raw, { raw: { width, height, channels } }).png().toBuffer();
}

const base: InputSpec = {
  layout: 'NCHW',
  channels: 3,
  width: 2,
  height: 2,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  output: 'auto',
};

describe('preprocess', () => {
  it('writes one plane per channel in NCHW and normalises with mean and std', async () => {
    const image = await png(2, 2, 3, (_x, _y, c) => [255, 0, 51][c]!);
    const spec = { ...base, mean: [0.5, 0, 0.1], std: [0.5, 1, 0.1] };
    const out = await preprocess(image, spec, false, 1e6);
    expect(out.length).toBe(12);
    // R: (1 - 0.5) / 0.5 = 1; G: 0; B: (0.2 - 0.1) / 0.1 = 1
    expect(Array.from(out.slice(0, 4))).toEqual([1, 1, 1, 1]);
    expect(Array.from(out.slice(4, 8))).toEqual([0, 0, 0, 0]);
    out.slice(8).forEach((v) => expect(v).toBeCloseTo(1, 5));
  });

  it('interleaves channels in NHWC', async () => {
    const image = await png(2, 2, 3, (_x, _y, c) => [255, 0, 0][c]!);
    const out = await preprocess(image, { ...base, layout: 'NHWC' }, false, 1e6);
    expect(Array.from(out.slice(0, 6))).toEqual([1, 0, 0, 1, 0, 0]);
  });

  it('letterboxes instead of stretching when the aspect ratio must be kept', async () => {
    // A white 8x2 image into a 4x4 input: kept whole it is 4x1, centred, black above and below.
    const image = await png(8, 2, 1, () => 255);
    const spec: InputSpec = { ...base, channels: 1, width: 4, height: 4, mean: [0], std: [1] };
    const kept = await preprocess(image, spec, true, 1e6);
    const rows = [0, 1, 2, 3].map((r) => Array.from(kept.slice(r * 4, r * 4 + 4)).reduce((a, b) => a + b, 0) / 4);
    expect(rows[0]).toBeLessThan(0.1);
    expect(rows[3]).toBeLessThan(0.1);
    expect(Math.max(rows[1]!, rows[2]!)).toBeGreaterThan(0.9);

    const stretched = await preprocess(image, spec, false, 1e6);
    expect(Math.min(...Array.from(stretched))).toBeGreaterThan(0.9);
  });

  it('reads a 16-bit PNG as the 8-bit PNG of the same picture', async () => {
    const spec: InputSpec = { ...base, channels: 1, width: 64, height: 64, mean: [0.5], std: [0.25] };
    const eight = await preprocess(await renderXray({ width: 320, height: 400, seed: 4 }), spec, false, 1e6);
    const sixteen = await preprocess(
      await renderXray({ width: 320, height: 400, seed: 4, bitDepth: 16 }),
      spec,
      false,
      1e6,
    );
    // One grey level of the 8-bit scale, after std 0.25: 4 / 255.
    eight.forEach((v, i) => expect(Math.abs(v - sixteen[i]!)).toBeLessThanOrEqual(4 / 255 + 1e-6));
  });

  it('refuses an image with more pixels than allowed, and only then', async () => {
    const image = await png(100, 100, 1, () => 10);
    const spec = { ...base, channels: 1 as const, mean: [0], std: [1] };
    await expect(preprocess(image, spec, false, 100 * 100 - 1)).rejects.toThrow(/exceeds pixel limit/);
    // The same image at exactly the limit decodes: the refusal above was the limit, not the image.
    await expect(preprocess(image, spec, false, 100 * 100)).resolves.toHaveLength(2 * 2);
  });
});
