import sharp from 'sharp';
import { unprocessable, unsupportedMedia } from '../errors';
import { imageRuleViolation, type ImageRules } from './image-rules';

export interface InspectedImage {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

/**
 * Checks that the bytes are a whole PNG or JPEG that follows the dataset's rules. The size
 * rules are checked from the header before decoding, so an oversized image is refused
 * without spending memory on it; then the image is decoded once to catch truncation.
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
  const violation = imageRuleViolation(width, height, rules);
  if (violation) throw unprocessable(violation, 'IMAGE_RULES');
  try {
    await sharp(bytes, { failOn: 'truncated', limitInputPixels: rules.maxPixels }).stats();
  } catch (error) {
    throw unprocessable(
      `the image data is damaged or truncated: ${(error as Error).message.split('\n')[0]}`,
      'IMAGE_CORRUPT',
    );
  }
  return { format: metadata.format, width, height };
}
