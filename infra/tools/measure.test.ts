import { percentile, serverTimings, stageMedians } from './measure';

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

describe('serverTimings', () => {
  it('reads each stage with its duration, in order, and leaves out entries without one', () => {
    const stages = serverTimings('auth;dur=1.5, lookup;desc="cache";dur=0, miss, upload ; dur=12');
    expect([...stages]).toEqual([
      ['auth', 1.5],
      ['lookup', 0],
      ['upload', 12],
    ]);
    expect(serverTimings(undefined).size).toBe(0);
    expect([...serverTimings(['a;dur=1', 'b;dur=2'])]).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('gives the median of each stage across requests', () => {
    const samples = ['a;dur=1, b;dur=10', 'a;dur=3, b;dur=30', 'a;dur=2, c;dur=5'].map(serverTimings);
    expect(stageMedians(samples)).toBe('a 2.0, b 10.0, c 5.0');
  });
});
