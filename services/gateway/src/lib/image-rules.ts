/** The dataset's rules for a submitted image: pure, so they are unit-tested without sharp. */
export interface ImageRules {
  minWidth: number;
  minHeight: number;
  maintainRatio: boolean;
  /** Relative tolerance: |image ratio − dataset ratio| / dataset ratio. */
  ratioTolerance: number;
  maxPixels: number;
}

/** Returns what is wrong with an image of this size, or null when it is acceptable. */
export function imageRuleViolation(width: number, height: number, rules: ImageRules): string | null {
  if (width * height > rules.maxPixels) {
    return `image is ${width}x${height} (${width * height} pixels); the limit is ${rules.maxPixels} pixels`;
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
