import { CompletionWaiters } from './completion-waiters';

describe('CompletionWaiters', () => {
  let clockAtStart = 0;
  // A fake clock: a wait that resolves while no time has passed was woken by an event, not its timer.
  beforeEach(() => {
    jest.useFakeTimers();
    clockAtStart = jest.now();
  });
  afterEach(() => jest.useRealTimers());

  it('wakes a waiter when its request is notified, before its timeout', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    const woken = pending.wait(5_000);
    waiters.notify('a');
    await expect(woken).resolves.toBe(true);
    expect(jest.now()).toBe(clockAtStart);
    expect(waiters.size).toBe(0);
  });

  it('does not miss an event that arrives between registering and waiting', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('a');
    await expect(pending.wait(5_000)).resolves.toBe(true);
    expect(jest.now()).toBe(clockAtStart);
  });

  it("times out when only another request's event comes, says so, and forgets the waiter", async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('b');
    let outcome: boolean | undefined;
    const waited = pending.wait(50).then((byEvent) => (outcome = byEvent));
    await jest.advanceTimersByTimeAsync(49);
    expect(outcome).toBeUndefined();
    await jest.advanceTimersByTimeAsync(1);
    await waited;
    expect(outcome).toBe(false);
    expect(waiters.size).toBe(0);
  });

  it('wakes every waiter when closing, and answers at once after', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.close();
    await expect(pending.wait(5_000)).resolves.toBe(true);
    await expect(waiters.expect('b').wait(5_000)).resolves.toBe(true);
    expect(waiters.closed).toBe(true);
  });
});
