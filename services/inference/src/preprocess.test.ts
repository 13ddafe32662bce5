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

  describe('refuses damaged data instead of guessing pixels', () => {
    const grey = (width: number, height: number) =>
      sharp(Buffer.from(Array.from({ length: width * height }, (_, i) => (i * 7 + (i >> 8) * 3) & 255)), {
        raw: { width, height, channels: 1 },
      });

    it('a PNG whose IDAT checksum is wrong', async () => {
      const png = Buffer.from(await grey(256, 256).png().toBuffer());
      await expect(preprocess(png, base, false, 1e6)).resolves.toHaveLength(12);
      const idat = png.indexOf('IDAT');
      png[idat + 4 + png.readUInt32BE(idat - 4)]! ^= 0xff; // first byte of the chunk's CRC
      await expect(preprocess(png, base, false, 1e6)).rejects.toThrow(/libpng read error/);
    });

    it('a JPEG with garbage in its entropy-coded data that libjpeg notices (it only warns)', async () => {
      const spec = { ...base, width: 224, height: 224 };
      const jpeg = Buffer.from(await grey(256, 256).jpeg({ quality: 90 }).toBuffer());
      await expect(preprocess(jpeg, spec, false, 1e6)).resolves.toHaveLength(3 * 224 * 224);
      const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
      const scan = sos + 2 + jpeg.readUInt16BE(sos + 2);
      // 64 pseudo-random bytes (no 0xFF, so no marker) that break the Huffman stream. JPEG has no
      // checksum: garbage that happens to decode cleanly cannot be told from an image.
      let x = 4;
      for (let i = 0; i < 64; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        jpeg[scan + 200 + i] = (x >> 16) % 255;
      }
      await expect(sharp(jpeg, { failOn: 'error' }).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
      await expect(preprocess(jpeg, spec, false, 1e6)).rejects.toThrow(/Corrupt JPEG data/);
    });
  });
});
