import { ConcurrencyLimit } from './concurrency-limit';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ConcurrencyLimit', () => {
  it('runs at most max tasks at once, the rest in order, and passes results and errors through', async () => {
    const limit = new ConcurrencyLimit(2);
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const tasks = [0, 1, 2, 3].map((i) =>
      limit.run(async () => {
        started.push(i);
        await new Promise<void>((resolve) => (finish[i] = resolve));
        if (i === 1) throw new Error('task 1 failed');
        return i * 10;
      }),
    );
    const settled = Promise.allSettled(tasks);
    await tick();
    expect(started).toEqual([0, 1]);
    expect(limit.running).toBe(2);
    finish[1]!();
    await tick();
    expect(started).toEqual([0, 1, 2]);
    finish[0]!();
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    finish[2]!();
    finish[3]!();
    expect((await settled).map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual([
      0,
      'task 1 failed',
      20,
      30,
    ]);
    expect(limit.running).toBe(0);
  });

  it('refuses a limit below one', () => {
    expect(() => new ConcurrencyLimit(0)).toThrow(RangeError);
  });
});
