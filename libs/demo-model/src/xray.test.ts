import sharp from 'sharp';
import { renderXray, renderXrayIntensity, XRAY_SIZES } from './xray';

jest.setTimeout(60_000);

/** Mean intensity of a box given in fractions of the image. */
function boxMean(
  p: Float32Array,
  width: number,
  height: number,
  u0: number,
  u1: number,
  v0: number,
  v1: number,
): number {
  let sum = 0;
  let n = 0;
  for (let y = Math.floor(v0 * height); y < v1 * height; y++)
    for (let x = Math.floor(u0 * width); x < u1 * width; x++) {
      sum += p[y * width + x]!;
      n += 1;
    }
  return sum / n;
}

describe('renderXray', () => {
  it('writes 8-bit and 16-bit grayscale PNG and JPEG at the size asked', async () => {
    const cases = [
      { format: 'png', bitDepth: 8, depth: 'uchar' },
      { format: 'png', bitDepth: 16, depth: 'ushort' },
      { format: 'jpeg', bitDepth: 8, depth: 'uchar' },
    ] as const;
    for (const { format, bitDepth, depth } of cases) {
      const meta = await sharp(await renderXray({ width: 320, height: 400, format, bitDepth, seed: 1 })).metadata();
      expect(meta).toMatchObject({ format, width: 320, height: 400, channels: 1, depth });
    }
  });

  it('uses the 16 bits: far more than 256 grey levels', async () => {
    const png = await renderXray({ width: 256, height: 256, bitDepth: 16, seed: 2 });
    const { data } = await sharp(png)
      .toColourspace('grey16')
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    const levels = new Set(new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2));
    expect(levels.size).toBeGreaterThan(2000);
  });

  it('is deterministic per seed and varies between seeds', async () => {
    const a = await renderXray({ width: 200, height: 240, seed: 7 });
    expect((await renderXray({ width: 200, height: 240, seed: 7 })).equals(a)).toBe(true);
    expect((await renderXray({ width: 200, height: 240, seed: 8 })).equals(a)).toBe(false);
  });

  it('looks like a chest film: dark air outside, dark lungs, bright spine, rib bands, noise', () => {
    const [w, h] = [400, 480];
    const p = renderXrayIntensity(w, h, 3);
    const outside = boxMean(p, w, h, 0, 0.03, 0.4, 0.6);
    const lung = boxMean(p, w, h, 0.25, 0.33, 0.4, 0.5);
    const spine = boxMean(p, w, h, 0.49, 0.51, 0.3, 0.5);
    expect(outside).toBeLessThan(lung);
    expect(lung).toBeLessThan(spine - 0.2);
    // Down a column through a lung the ribs make the intensity rise and fall several times.
    const column = Array.from({ length: Math.floor(0.4 * h) }, (_, i) => {
      const y = Math.floor(0.25 * h) + i;
      let s = 0;
      for (let x = Math.floor(0.28 * w); x < 0.32 * w; x++) s += p[y * w + x]!;
      return s / (0.04 * w);
    });
    const smooth = column.map((_, i) => column.slice(Math.max(0, i - 3), i + 4).reduce((a, b) => a + b, 0) / 7);
    let peaks = 0;
    for (let i = 1; i < smooth.length - 1; i++)
      if (smooth[i]! > smooth[i - 1]! && smooth[i]! >= smooth[i + 1]!) peaks++;
    expect(peaks).toBeGreaterThanOrEqual(2);
    // Noise: neighbouring pixels differ.
    let diff = 0;
    for (let x = 0; x < w - 1; x++) diff += Math.abs(p[(h / 2) * w + x + 1]! - p[(h / 2) * w + x]!);
    expect(diff / w).toBeGreaterThan(0.003);
  });

  it('renders the largest listed size', async () => {
    const largest = XRAY_SIZES[XRAY_SIZES.length - 1]!;
    expect(largest).toEqual({ width: 2048, height: 2496 });
    const meta = await sharp(await renderXray({ ...largest, format: 'jpeg' })).metadata();
    expect(meta).toMatchObject({ width: 2048, height: 2496 });
  });

  it('rejects a 16-bit JPEG and tiny sizes', async () => {
    await expect(renderXray({ width: 64, height: 64, format: 'jpeg', bitDepth: 16 })).rejects.toThrow(RangeError);
    expect(() => renderXrayIntensity(8, 64)).toThrow(RangeError);
  });
});
