import sharp from 'sharp';
import { unprocessable, unsupportedMedia } from '../errors';
import { imageRuleViolation, type ImageRules } from './image-rules';

export interface InspectedImage {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

/**
 * Checks from the header alone that the bytes are a PNG or JPEG that follows the dataset's
 * rules (format, size, ratio, pixel limit). The gateway never decodes the pixels: inference
 * does that once, strictly, and fails a damaged image with IMAGE_CORRUPT and its reason.
 */
export async function inspectImage(bytes: Buffer, rules: ImageRules): Promise<InspectedImage> {
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw unsupportedMedia('the file is not a readable image; send a PNG or JPEG');
  }
  if (metadata.format !== 'png' && metadata.format !== 'jpeg') {
    throw unsupportedMedia(`the image is ${metadata.format ?? 'of an unknown format'}; send a PNG or JPEG`);
  }
  const width = metadata.autoOrient?.width ?? metadata.width;
  const height = metadata.autoOrient?.height ?? metadata.height;
  if (!width || !height) throw unprocessable('the image has no width or height', 'IMAGE_INVALID');
  const violation = imageRuleViolation(width, height, rules, {
    channels: metadata.channels ?? 1,
    // 8-bit samples unless the header says 16 (PNG may); anything else counts as 4 bytes.
    bytesPerSample:
      metadata.depth === 'uchar' || metadata.depth === 'char'
        ? 1
        : metadata.depth === 'ushort' || metadata.depth === 'short'
          ? 2
          : 4,
  });
  if (violation) throw unprocessable(violation, 'IMAGE_RULES');
  return { format: metadata.format, width, height };
}
