import { KeyedQueue } from './keyed-queue';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('KeyedQueue', () => {
  it('runs tasks of one key one after another, in the order they came', async () => {
    const queue = new KeyedQueue();
    const order: string[] = [];
    const gate = deferred();
    const first = queue.run('a', async () => {
      order.push('first starts');
      await gate.promise;
      order.push('first ends');
    });
    const second = queue.run('a', async () => {
      order.push('second runs');
    });
    await Promise.resolve();
    expect(order).toEqual(['first starts']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['first starts', 'first ends', 'second runs']);
  });

  it('runs tasks of different keys at the same time', async () => {
    const queue = new KeyedQueue();
    const gate = deferred();
    const started: string[] = [];
    const a = queue.run('a', async () => {
      started.push('a');
      await gate.promise;
    });
    const b = queue.run('b', async () => {
      started.push('b');
    });
    await b;
    expect(started).toEqual(['a', 'b']);
    gate.resolve();
    await a;
  });

  it('goes on with the next task after one fails, and forgets keys with nothing in flight', async () => {
    const queue = new KeyedQueue();
    const failing = queue.run('a', () => Promise.reject(new Error('boom')));
    const after = queue.run('a', async () => 'ran');
    await expect(failing).rejects.toThrow('boom');
    await expect(after).resolves.toBe('ran');
    await new Promise((r) => setImmediate(r));
    expect(queue.size).toBe(0);
  });
});
