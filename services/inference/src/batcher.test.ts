import { MicroBatcher, type BatchClock, type Settled } from './batcher';

/** A clock that moves only when told, firing the timers that fall due. */
class FakeClock implements BatchClock {
  private time = 0;
  private timers = new Map<number, { at: number; fire: () => void }>();
  private nextId = 1;
  now(): number {
    return this.time;
  }
  setTimer(fire: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fire });
    return id;
  }
  clearTimer(timer: unknown): void {
    this.timers.delete(timer as number);
  }
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fire();
      await settle();
    }
    this.time = until;
    await settle();
  }
}

/** Lets promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Call {
  key: string;
  items: string[];
  finish: (outcomes?: Settled<string>[]) => void;
  fail: (error: Error) => void;
}

/** A runner that records each batch and answers only when the test says so. */
function fakeRunner() {
  const calls: Call[] = [];
  const run = (key: string, items: string[]) =>
    new Promise<Settled<string>[]>((resolve, reject) => {
      calls.push({
        key,
        items,
        finish: (outcomes) => resolve(outcomes ?? items.map((i) => ({ ok: true, value: `${i}!` }))),
        fail: reject,
      });
    });
  return { calls, run };
}

function setup(options: { capacity?: number; maxWaitMs?: number } = {}) {
  const clock = new FakeClock();
  const runner = fakeRunner();
  const batcher = new MicroBatcher<string, string>({
    run: runner.run,
    capacity: options.capacity ?? 1,
    maxWaitMs: options.maxWaitMs ?? 5,
    clock,
  });
  return { clock, batcher, calls: runner.calls };
}

/** Records how each submission ended, without unhandled rejections. */
function track(promise: Promise<{ value: string; batchSize: number }>) {
  const state: { value?: string; batchSize?: number; error?: Error } = {};
  promise.then(
    (r) => Object.assign(state, r),
    (e: Error) => (state.error = e),
  );
  return state;
}

describe('MicroBatcher', () => {
  it('sends a batch as soon as it is full, without waiting', async () => {
    const { batcher, calls } = setup();
    const results = ['a1', 'a2', 'a3', 'a4'].map((i) => track(batcher.submit('a', 4, i)));
    await settle();
    expect(calls.map((c) => c.items)).toEqual([['a1', 'a2', 'a3', 'a4']]);
    calls[0]!.finish();
    await settle();
    expect(results).toEqual(['a1!', 'a2!', 'a3!', 'a4!'].map((value) => ({ value, batchSize: 4 })));
  });

  it('sends what it has once the first item waited maxWaitMs', async () => {
    const { batcher, calls, clock } = setup({ maxWaitMs: 5 });
    const first = track(batcher.submit('a', 8, 'a1'));
    await clock.advance(2);
    track(batcher.submit('a', 8, 'a2'));
    await clock.advance(2.9);
    expect(calls).toHaveLength(0);
    await clock.advance(0.1); // 5 ms after the first, not the second
    expect(calls.map((c) => c.items)).toEqual([['a1', 'a2']]);
    calls[0]!.finish();
    await settle();
    expect(first).toEqual({ value: 'a1!', batchSize: 2 });
  });

  it('never mixes keys: each model (and input shape) gets its own batches', async () => {
    const { batcher, calls, clock } = setup({ capacity: 2 });
    track(batcher.submit('a', 2, 'a1'));
    track(batcher.submit('b', 2, 'b1'));
    track(batcher.submit('a', 2, 'a2'));
    await settle();
    expect(calls.map((c) => [c.key, c.items])).toEqual([['a', ['a1', 'a2']]]);
    await clock.advance(5);
    expect(calls.map((c) => [c.key, c.items])).toEqual([
      ['a', ['a1', 'a2']],
      ['b', ['b1']],
    ]);
  });

  it('sends an item of a model that cannot batch (maxBatch 1) at once', async () => {
    const { batcher, calls } = setup({ capacity: 2 });
    track(batcher.submit('fixed', 1, 'f1'));
    track(batcher.submit('fixed', 1, 'f2'));
    await settle();
    expect(calls.map((c) => c.items)).toEqual([['f1'], ['f2']]);
  });

  it('while the runner is busy, keeps filling; then sends the oldest due key, up to maxBatch', async () => {
    const { batcher, calls, clock } = setup({ capacity: 1, maxWaitMs: 5 });
    track(batcher.submit('a', 3, 'a1'));
    await clock.advance(5);
    expect(calls).toHaveLength(1); // a1 alone: nothing else came in time
    track(batcher.submit('b', 3, 'b1'));
    await clock.advance(1);
    for (const i of ['a2', 'a3', 'a4', 'a5']) track(batcher.submit('a', 3, i));
    await clock.advance(50); // long past every wait: no room, so nothing more went out
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    await settle();
    // b1 waited longest, though a is full; then a's first three, then the rest of a.
    expect(calls.map((c) => [c.key, c.items])).toEqual([
      ['a', ['a1']],
      ['b', ['b1']],
    ]);
    calls[1]!.finish();
    await settle();
    calls[2]!.finish();
    await settle();
    expect(calls.slice(2).map((c) => [c.key, c.items])).toEqual([
      ['a', ['a2', 'a3', 'a4']],
      ['a', ['a5']],
    ]);
    expect(batcher.stats).toEqual({ batches: 4, items: 6 });
    expect(batcher.waiting).toBe(0);
  });

  it('a failing run fails only its own items', async () => {
    const { batcher, calls } = setup({ capacity: 2 });
    const a = ['a1', 'a2'].map((i) => track(batcher.submit('a', 2, i)));
    const b = ['b1', 'b2'].map((i) => track(batcher.submit('b', 2, i)));
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['a', 'b']);
    calls[0]!.fail(new Error('thread died'));
    calls[1]!.finish();
    await settle();
    expect(a.map((s) => s.error?.message)).toEqual(['thread died', 'thread died']);
    expect(b).toEqual([
      { value: 'b1!', batchSize: 2 },
      { value: 'b2!', batchSize: 2 },
    ]);
    // The batcher goes on after a failure.
    const later = track(batcher.submit('a', 1, 'a3'));
    await settle();
    calls[2]!.finish();
    await settle();
    expect(later).toEqual({ value: 'a3!', batchSize: 1 });
  });

  it('an item the runner answers with an error fails alone', async () => {
    const { batcher, calls } = setup();
    const [ok, bad] = ['x1', 'x2'].map((i) => track(batcher.submit('x', 2, i)));
    await settle();
    calls[0]!.finish([
      { ok: true, value: 'fine' },
      { ok: false, error: new Error('ORT refused x2') },
    ]);
    await settle();
    expect(ok).toEqual({ value: 'fine', batchSize: 2 });
    expect(bad!.error?.message).toBe('ORT refused x2');
  });

  it('fails the whole batch when the runner answers the wrong number of outcomes', async () => {
    const { batcher, calls } = setup();
    const results = ['x1', 'x2'].map((i) => track(batcher.submit('x', 2, i)));
    await settle();
    calls[0]!.finish([{ ok: true, value: 'only one' }]);
    await settle();
    for (const r of results) expect(r.error?.message).toMatch(/1 outcomes for 2 items/);
  });

  it('keeps the lower maxBatch of a key once lowered', async () => {
    const { batcher, calls } = setup({ capacity: 1 });
    track(batcher.submit('a', 8, 'a1'));
    track(batcher.submit('a', 1, 'a2'));
    await settle();
    expect(calls.map((c) => c.items)).toEqual([['a1']]);
  });
});
