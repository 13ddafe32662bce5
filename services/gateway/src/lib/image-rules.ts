/** The dataset's rules for a submitted image: pure, so they are unit-tested without sharp. */
export interface ImageRules {
  minWidth: number;
  minHeight: number;
  maintainRatio: boolean;
  /** Relative tolerance: |image ratio − dataset ratio| / dataset ratio. */
  ratioTolerance: number;
  maxPixels: number;
  /** Bytes the decoded image takes (pixels × channels × bytes per sample): a small file of 16-bit RGBA can be huge decoded. */
  maxDecodedBytes: number;
}

/** How a pixel is stored once decoded: 1 to 4 channels of 1 (8-bit) or 2 (16-bit) bytes. */
export interface PixelLayout {
  channels: number;
  bytesPerSample: number;
}

/** Returns what is wrong with an image of this size, or null when it is acceptable. */
export function imageRuleViolation(
  width: number,
  height: number,
  rules: ImageRules,
  layout: PixelLayout = { channels: 1, bytesPerSample: 1 },
): string | null {
  if (width * height > rules.maxPixels) {
    return `image is ${width}x${height} (${width * height} pixels); the limit is ${rules.maxPixels} pixels`;
  }
  const decoded = width * height * layout.channels * layout.bytesPerSample;
  if (decoded > rules.maxDecodedBytes) {
    return (
      `image is ${width}x${height} with ${layout.channels} channel(s) of ${8 * layout.bytesPerSample} bits, ` +
      `${decoded} bytes decoded; the limit is ${rules.maxDecodedBytes} bytes`
    );
  }
  if (width < rules.minWidth || height < rules.minHeight) {
    return `image is ${width}x${height}; this dataset needs at least ${rules.minWidth}x${rules.minHeight}`;
  }
  if (rules.maintainRatio) {
    const expected = rules.minWidth / rules.minHeight;
    const actual = width / height;
    const off = Math.abs(actual - expected) / expected;
    if (off > rules.ratioTolerance) {
      return (
        `image ratio ${width}:${height} (${actual.toFixed(4)}) differs from this dataset's ` +
        `${rules.minWidth}:${rules.minHeight} (${expected.toFixed(4)}) by ${(off * 100).toFixed(2)}%; ` +
        `the tolerance is ${(rules.ratioTolerance * 100).toFixed(2)}%`
      );
    }
  }
  return null;
}
