import { imageRuleViolation, type ImageRules } from './image-rules';

const rules: ImageRules = {
  minWidth: 200,
  minHeight: 100,
  maintainRatio: true,
  ratioTolerance: 0.01,
  maxPixels: 1_000_000,
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
});
