import sharp from 'sharp';
import { mulberry32, renderSample, renderSamplePixels } from './samples';

const mean = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0) / a.length / 255;

describe('renderSample', () => {
  it('defaults to a 256x256 single-channel PNG', async () => {
    const meta = await sharp(await renderSample('dark')).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 256, height: 256, channels: 1 });
  });

  it('honours size and jpeg format', async () => {
    const meta = await sharp(await renderSample('striped', { width: 300, height: 200, format: 'jpeg' })).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 300, height: 200 });
  });

  it('is deterministic per seed and varies between seeds', async () => {
    const a = await renderSample('bright', { seed: 7 });
    expect((await renderSample('bright', { seed: 7 })).equals(a)).toBe(true);
    expect((await renderSample('bright', { seed: 8 })).equals(a)).toBe(false);
  });

  it('separates the classes by overall intensity and bar contrast', () => {
    const dark = renderSamplePixels('dark', 64, 64, 1);
    const bright = renderSamplePixels('bright', 64, 64, 1);
    const striped = renderSamplePixels('striped', 64, 64, 1);
    expect(mean(dark)).toBeLessThan(0.2);
    expect(mean(bright)).toBeGreaterThan(0.7);
    expect(mean(striped)).toBeGreaterThan(0.3);
    expect(mean(striped)).toBeLessThan(0.6);
    // Mean absolute horizontal difference: bars make it an order of magnitude larger.
    const edge = (p: Uint8Array): number => {
      let s = 0;
      for (let i = 1; i < p.length; i++) if (i % 64 !== 0) s += Math.abs((p[i] ?? 0) - (p[i - 1] ?? 0));
      return s / p.length / 255;
    };
    expect(edge(striped)).toBeGreaterThan(5 * Math.max(edge(dark), edge(bright)));
  });

  it('rejects invalid sizes', () => {
    expect(() => renderSamplePixels('dark', 0, 10)).toThrow(RangeError);
  });
});

describe('mulberry32', () => {
  it('is deterministic and in [0, 1)', () => {
    const a = mulberry32(123);
    const b = mulberry32(123);
    for (let i = 0; i < 100; i++) {
      const v = a();
      expect(v).toBe(b());
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
    }
  });
});
