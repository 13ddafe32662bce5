import { classify, looksLikeProbabilities } from './scores';

describe('classify', () => {
  const labels = ['normal', 'covid', 'pneumonia'];

  it('keeps probabilities as they are and picks the largest', () => {
    const c = classify(labels, [0.2, 0.7, 0.1], 'probabilities');
    expect(c.label).toBe('covid');
    expect(c.score).toBeCloseTo(0.7);
    expect(c.scores.map((s) => s.label)).toEqual(labels);
  });

  it('applies softmax to logits', () => {
    const c = classify(labels, [1, 3, 0], 'logits');
    const total = c.scores.reduce((a, s) => a + s.score, 0);
    expect(total).toBeCloseTo(1, 6);
    expect(c.label).toBe('covid');
    expect(c.score).toBeCloseTo(Math.exp(3) / (Math.exp(1) + Math.exp(3) + 1), 6);
  });

  it('in auto mode tells probabilities from logits', () => {
    expect(looksLikeProbabilities([0.25, 0.75])).toBe(true);
    expect(looksLikeProbabilities([0.5, 0.6])).toBe(false);
    expect(looksLikeProbabilities([2, -1])).toBe(false);
    expect(classify(['a', 'b'], [0.25, 0.75], 'auto').score).toBeCloseTo(0.75);
    expect(classify(['a', 'b'], [2, -1], 'auto').score).toBeCloseTo(Math.exp(2) / (Math.exp(2) + Math.exp(-1)));
  });

  it('refuses an output whose length differs from the labels, or that holds NaN', () => {
    expect(() => classify(labels, [0.5, 0.5], 'auto')).toThrow(/2 scores for 3 labels/);
    expect(() => classify(['a', 'b'], [NaN, 1], 'auto')).toThrow(/finite/);
  });

  it('is stable for large logits', () => {
    const c = classify(['a', 'b'], [1000, 999], 'logits');
    expect(c.score).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
  });
});
