import { requeueDelay } from './broker';

describe('requeueDelay', () => {
  it('doubles per delivery from the first wait and stops at 30 s', () => {
    expect([0, 1, 2, 3, 4].map((n) => requeueDelay(n, 1000))).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(requeueDelay(10, 1000)).toBe(30_000);
  });

  it('treats a missing or odd count as a first delivery', () => {
    expect(requeueDelay(-1, 500)).toBe(500);
    expect(requeueDelay(0, 0)).toBe(0);
  });
});
