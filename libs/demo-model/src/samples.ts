import sharp from 'sharp';
import type { DemoLabel } from './demo-classifier';

export type SampleKind = DemoLabel;

export interface RenderSampleOptions {
  /** Default 256. */
  width?: number;
  /** Default 256. */
  height?: number;
  /** Default 'png'. */
  format?: 'png' | 'jpeg';
  /** Varies noise, anatomy and stripe phase slightly; default 0. */
  seed?: number;
}

/** mulberry32: tiny deterministic PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  // A local, not `Math.imul`: in a vm context (Jest) every global lookup goes through an
  // interceptor, which made drawing millions of weights some 30 times slower.
  const imul = Math.imul;
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Levels {
  background: number;
  torso: number;
  lung: number;
  spine: number;
}

// Intensities in 0..1. Only the overall level (dark vs bright) and the bars (striped) carry the
// class; the anatomy is soft-edged so it adds almost no horizontal-gradient energy.
const LEVELS: Record<SampleKind, Levels> = {
  dark: { background: 0.04, torso: 0.22, lung: 0.1, spine: 0.06 },
  bright: { background: 0.7, torso: 0.88, lung: 0.8, spine: 0.04 },
  striped: { background: 0.35, torso: 0.5, lung: 0.42, spine: 0.04 },
};
const STRIPE_PERIODS = 8; // relative to width, so bars survive any resize to 64 px (period 8 px)
const STRIPE_AMPLITUDE = 0.3;
const NOISE = 0.03;

function smoothstep(edge0: number, edge1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - edge0) / (edge1 - edge0)));
  return t * t * (3 - 2 * t);
}

/** 1 inside the ellipse, 0 outside, with a soft rim so its outline is not a strong edge. */
function ellipseMask(u: number, v: number, cu: number, cv: number, ru: number, rv: number): number {
  const d = Math.hypot((u - cu) / ru, (v - cv) / rv);
  return 1 - smoothstep(0.8, 1.2, d);
}

/** Raw 8-bit grayscale pixels of a synthetic, vaguely chest-X-ray-like image. */
export function renderSamplePixels(kind: SampleKind, width: number, height: number, seed = 0): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`sample size must be positive integers, got ${width}x${height}`);
  }
  const rand = mulberry32(seed);
  const jitter = (amount: number): number => (rand() * 2 - 1) * amount;
  const levels = LEVELS[kind];
  const offset = jitter(0.03);
  const lungRu = 0.13 * (1 + jitter(0.05));
  const lungRv = 0.3 * (1 + jitter(0.05));
  const lungShift = jitter(0.02);
  const stripePhase = rand();

  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const v = (y + 0.5) / height;
    for (let x = 0; x < width; x++) {
      const u = (x + 0.5) / width;
      const torso = ellipseMask(u, v, 0.5, 0.58, 0.42, 0.5);
      const lungs = Math.max(
        ellipseMask(u, v, 0.32 + lungShift, 0.5, lungRu, lungRv),
        ellipseMask(u, v, 0.68 + lungShift, 0.5, lungRu, lungRv),
      );
      const spine = Math.exp(-(((u - 0.5) / 0.03) ** 2)) * torso;
      let p = levels.background + (levels.torso - levels.background) * torso;
      p += (levels.lung - levels.torso) * lungs + levels.spine * spine + offset;
      if (kind === 'striped') {
        p += (u * STRIPE_PERIODS + stripePhase) % 1 < 0.5 ? STRIPE_AMPLITUDE : -STRIPE_AMPLITUDE;
      }
      p += jitter(NOISE);
      out[y * width + x] = Math.round(Math.min(1, Math.max(0, p)) * 255);
    }
  }
  return out;
}

/**
 * Encoded synthetic sample for the demo classifier: "dark" = low overall intensity,
 * "bright" = high overall intensity (diffuse opacity), "striped" = strong vertical bars
 * on a mid-grey chest. Default 256x256 PNG, 8-bit grayscale.
 */
export async function renderSample(kind: SampleKind, opts: RenderSampleOptions = {}): Promise<Buffer> {
  const width = opts.width ?? 256;
  const height = opts.height ?? 256;
  const pixels = renderSamplePixels(kind, width, height, opts.seed ?? 0);
  // Without an explicit b-w colourspace sharp writes the single raw channel out as RGB.
  const image = sharp(pixels, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
  return (opts.format ?? 'png') === 'jpeg' ? image.jpeg({ quality: 90 }).toBuffer() : image.png().toBuffer();
}
