import sharp from 'sharp';
import { mulberry32 } from './samples';

/**
 * Synthetic, vaguely chest-radiograph-looking grayscale images at the sizes real ones come in
 * (1024 x 1024 up to 2048 x 2496 and beyond), for measuring decoding and preprocessing. They are
 * not anatomy: a soft torso, two dark lung fields crossed by curved rib bands, a bright spine and
 * heart shadow, domed diaphragm, clavicles, an exposure gradient and quantum-like noise, seeded.
 */
export interface XrayOptions {
  width: number;
  height: number;
  /** Default 0. */
  seed?: number;
  /** Default 'png'. */
  format?: 'png' | 'jpeg';
  /** PNG only: 8 (default) or 16 bits per pixel; JPEG is always 8. */
  bitDepth?: 8 | 16;
}

/** Sizes of real chest radiographs, from a downsampled export to a full detector. */
export const XRAY_SIZES: readonly { width: number; height: number }[] = [
  { width: 1024, height: 1024 },
  { width: 1536, height: 1536 },
  { width: 2048, height: 2048 },
  { width: 2048, height: 2496 },
];

/** Intensity 0..1 (1 = white, dense) of every pixel, row by row. */
export function renderXrayIntensity(width: number, height: number, seed = 0): Float32Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 16 || height < 16) {
    throw new RangeError(`image size must be integers >= 16, got ${width}x${height}`);
  }
  // Locals, not Math.*: see mulberry32 (global lookups are slow inside Jest's vm context).
  const { exp, abs, cos, min, max, PI } = Math;
  const rand = mulberry32(seed);
  const jitter = (amount: number): number => (rand() * 2 - 1) * amount;

  const tilt = jitter(0.02); // patient slightly rotated
  const lungW = 0.17 * (1 + jitter(0.06));
  const lungH = 0.3 * (1 + jitter(0.06));
  const lungTop = 0.2 + jitter(0.02);
  const heartX = 0.56 + jitter(0.02);
  const heartR = 0.13 * (1 + jitter(0.08));
  const ribs = 8.5 + rand(); // bands per image height
  const ribPhase = rand();
  const exposure = 0.9 + jitter(0.08);
  const gradient = jitter(0.15); // heel effect: one side brighter
  const noise = 0.015 + rand() * 0.01;

  const soft = (d: number, edge: number): number => 1 / (1 + exp((d - 1) / edge)); // ~1 inside, ~0 outside
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const v = (y + 0.5) / height;
    for (let x = 0; x < width; x++) {
      const u0 = (x + 0.5) / width;
      const u = u0 + tilt * (v - 0.5);
      const du = abs(u - 0.5); // distance from the midline

      // Torso and shoulders: soft tissue that is denser toward the edges of the body.
      const torso = soft(((u - 0.5) / 0.44) ** 2 + ((v - 0.62) / 0.62) ** 2, 0.04);
      let p = 0.08 + 0.42 * torso * (0.8 + 0.4 * du);

      // Lungs: air, dark, bounded below by the domed diaphragm.
      const lx = (du - 0.2) / lungW;
      const ly = (v - lungTop - lungH) / lungH;
      const dome = lungTop + 2 * lungH - 0.07 * cos(min(1, abs(lx)) * PI * 0.5);
      const belowDiaphragm = 1 / (1 + exp((dome - v) / 0.006));
      const lung = soft(lx * lx + ly * ly, 0.06) * (1 - belowDiaphragm);
      p -= 0.28 * lung;

      // Ribs: bands curving down away from the spine, over the chest above the diaphragm.
      const curve = v - 0.55 * (du - 0.05) ** 2 - 0.18 * du;
      const rib = max(0, cos(2 * PI * (curve * ribs + ribPhase)) - 0.4) / 0.6;
      const ribZone = soft(((v - 0.42) / 0.34) ** 2, 0.1) * (1 - exp(-((du / 0.05) ** 2)));
      p += 0.14 * rib * torso * ribZone * (0.5 + 0.5 * lung);

      // Clavicles across the top, spine and mediastinum down the middle, heart shadow low and left.
      const clavicle =
        exp(-(((v - 0.17 - 0.25 * (du - 0.18) ** 2 - 0.05 * du) / 0.012) ** 2)) * soft((du / 0.3) ** 2, 0.05);
      const spine = exp(-((du / 0.035) ** 2)) * torso;
      const vertebra = 0.7 + 0.3 * cos(2 * PI * v * 24);
      const heart = soft(((u - heartX) / (heartR * 1.2)) ** 2 + ((v - 0.58) / heartR) ** 2, 0.05);
      const mediastinum = exp(-((du / 0.08) ** 2)) * soft(((v - 0.45) / 0.3) ** 2, 0.1);
      p += 0.22 * clavicle + 0.3 * spine * vertebra + 0.18 * heart + 0.12 * mediastinum + 0.08 * belowDiaphragm * torso;

      // Exposure, a gradient across the field, and noise.
      p = p * exposure * (1 + gradient * (u0 - 0.5)) + (rand() + rand() - 1) * noise;
      out[y * width + x] = min(1, max(0, p));
    }
  }
  return out;
}

/** An encoded synthetic radiograph (PNG 8 or 16 bit, or JPEG), the same pixels for the same options. */
export async function renderXray(options: XrayOptions): Promise<Buffer> {
  const { width, height } = options;
  const format = options.format ?? 'png';
  const bitDepth = options.bitDepth ?? 8;
  if (format === 'jpeg' && bitDepth !== 8) throw new RangeError('JPEG images are 8 bit');
  const intensity = renderXrayIntensity(width, height, options.seed ?? 0);
  if (bitDepth === 16) {
    const pixels = new Uint16Array(intensity.length);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(intensity[i]! * 65535);
    return sharp(pixels, { raw: { width, height, channels: 1 } })
      .toColourspace('grey16')
      .png({ compressionLevel: 6 })
      .toBuffer();
  }
  const pixels = new Uint8Array(intensity.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.round(intensity[i]! * 255);
  const image = sharp(pixels, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
  return format === 'jpeg' ? image.jpeg({ quality: 90 }).toBuffer() : image.png({ compressionLevel: 6 }).toBuffer();
}
