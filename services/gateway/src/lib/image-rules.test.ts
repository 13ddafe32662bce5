import { imageRuleViolation, type ImageRules } from './image-rules';

const rules: ImageRules = {
  minWidth: 200,
  minHeight: 100,
  maintainRatio: true,
  ratioTolerance: 0.01,
  maxPixels: 1_000_000,
  maxDecodedBytes: 2_000_000,
};

describe('imageRuleViolation', () => {
  it('accepts an image at the minimum size and the exact ratio', () => {
    expect(imageRuleViolation(200, 100, rules)).toBeNull();
    expect(imageRuleViolation(400, 200, rules)).toBeNull();
  });

  it('accepts a ratio within the tolerance and refuses one just outside it', () => {
    expect(imageRuleViolation(402, 200, rules)).toBeNull(); // 0.5% off
    expect(imageRuleViolation(405, 200, rules)).toMatch(/tolerance is 1.00%/); // 1.25% off
  });

  it('says which minimum an image misses', () => {
    expect(imageRuleViolation(199, 100, { ...rules, maintainRatio: false })).toMatch(/at least 200x100/);
    expect(imageRuleViolation(300, 99, { ...rules, maintainRatio: false })).toMatch(/at least 200x100/);
  });

  it('ignores the ratio when the dataset does not keep it', () => {
    expect(imageRuleViolation(900, 100, { ...rules, maintainRatio: false })).toBeNull();
  });

  it('refuses more pixels than the limit before anything else', () => {
    expect(imageRuleViolation(2000, 1000, rules)).toMatch(/limit is 1000000 pixels/);
  });

  it('refuses an image whose decoded size is over the limit, counting channels and bit depth', () => {
    const open = { ...rules, maintainRatio: false };
    // 1,000,000 pixels: under the pixel limit; 8-bit grey is 1 MB, 16-bit RGBA 8 MB.
    expect(imageRuleViolation(1000, 1000, open, { channels: 1, bytesPerSample: 1 })).toBeNull();
    expect(imageRuleViolation(1000, 1000, open, { channels: 2, bytesPerSample: 1 })).toBeNull();
    expect(imageRuleViolation(1000, 1000, open, { channels: 4, bytesPerSample: 2 })).toBe(
      'image is 1000x1000 with 4 channel(s) of 16 bits, 8000000 bytes decoded; the limit is 2000000 bytes',
    );
    expect(imageRuleViolation(1000, 1000, open, { channels: 3, bytesPerSample: 1 })).toMatch(/3000000 bytes decoded/);
  });
});
