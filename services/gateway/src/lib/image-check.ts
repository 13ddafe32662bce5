import sharp from 'sharp';
import { unprocessable, unsupportedMedia } from '../errors';
import { imageRuleViolation, type ImageRules } from './image-rules';

export interface InspectedImage {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

/** The image's first bytes kept in memory as it is spooled; its header is read from them. */
export const IMAGE_HEAD_BYTES = 256 * 1024;
/** How far into the file a header may reach (a JPEG's APP segments: EXIF, ICC profile, …). */
export const MAX_IMAGE_HEADER_BYTES = 1024 * 1024;

/** An upload whose header can be read without holding all of it (see SpooledUpload). */
export interface ImageSource {
  readonly head: Buffer;
  readonly size: number;
  prefix(length: number): Promise<Buffer>;
}

async function readMetadata(bytes: Buffer): Promise<sharp.Metadata | null> {
  try {
    return await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    return null;
  }
}

/**
 * Checks from the header alone that the bytes are a PNG or JPEG that follows the dataset's
 * rules (format, size, ratio, pixel limit). The gateway never decodes the pixels: inference
 * does that once, strictly, and fails a damaged image with IMAGE_CORRUPT and its reason. The
 * header is read from the upload's first bytes, and from up to MAX_IMAGE_HEADER_BYTES of the
 * file when it reaches further.
 */
export async function inspectImage(source: ImageSource, rules: ImageRules): Promise<InspectedImage> {
  let metadata = await readMetadata(source.head);
  if (!metadata && source.size > source.head.length) {
    metadata = await readMetadata(await source.prefix(MAX_IMAGE_HEADER_BYTES));
  }
  if (!metadata) {
    throw unsupportedMedia(
      source.size > MAX_IMAGE_HEADER_BYTES
        ? `the file is not a readable image, or its header reaches past the first ${MAX_IMAGE_HEADER_BYTES} bytes; send a PNG or JPEG`
        : 'the file is not a readable image; send a PNG or JPEG',
    );
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
