import { percentile } from './measure';

describe('percentile', () => {
  it('takes the nearest rank, sorted or not', () => {
    const values = [50, 10, 40, 20, 30];
    expect(percentile(values, 50)).toBe(30);
    expect(percentile(values, 95)).toBe(50);
    expect(percentile(values, 1)).toBe(10);
    expect(
      percentile(
        [...values].sort((a, b) => a - b),
        50,
      ),
    ).toBe(30);
    expect(values).toEqual([50, 10, 40, 20, 30]);
  });

  it('is NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});
