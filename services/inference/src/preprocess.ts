import sharp from 'sharp';
import type { InputSpec } from '@cxr/contracts';

/**
 * Decodes an image into the model's input tensor data (batch of one), strictly: truncated or
 * damaged data (a bad CRC, garbage in the entropy-coded data) is an error, never a guess. libjpeg
 * reports damaged entropy-coded data only as a warning ("Corrupt JPEG data"), so warnings fail too. With `keepAspectRatio`
 * the image is letterboxed (fitted whole, padded with black) so it is never distorted;
 * otherwise it is stretched to the input size. Pixels become (p/255 − mean[c]) / std[c].
 */
export async function preprocess(
  bytes: Buffer,
  spec: InputSpec,
  keepAspectRatio: boolean,
  maxPixels: number,
): Promise<Float32Array> {
  let pipeline = sharp(bytes, { failOn: 'warning', limitInputPixels: maxPixels })
    .autoOrient()
    .removeAlpha()
    .resize(spec.width, spec.height, {
      fit: keepAspectRatio ? 'contain' : 'fill',
      background: { r: 0, g: 0, b: 0 },
      kernel: 'lanczos3',
    });
  pipeline = spec.channels === 1 ? pipeline.toColourspace('b-w') : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== spec.channels || info.width !== spec.width || info.height !== spec.height) {
    throw new Error(
      `decoded to ${info.width}x${info.height}x${info.channels}, expected ${spec.width}x${spec.height}x${spec.channels}`,
    );
  }
  const { width, height, channels } = spec;
  const plane = width * height;
  const out = new Float32Array(plane * channels);
  const scale = spec.std.map((s) => 1 / (255 * s));
  const shift = spec.mean.map((m, c) => m / spec.std[c]!);
  // sharp gives interleaved HWC bytes; NCHW wants one plane per channel.
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < channels; c++) {
      const value = data[i * channels + c]! * scale[c]! - shift[c]!;
      if (spec.layout === 'NCHW') out[c * plane + i] = value;
      else out[i * channels + c] = value;
    }
  }
  return out;
}
