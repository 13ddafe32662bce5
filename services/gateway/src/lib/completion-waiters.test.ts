import { CompletionWaiters } from './completion-waiters';

describe('CompletionWaiters', () => {
  it('wakes a waiter when its request is notified, long before its timeout', async () => {
    const waiters = new CompletionWaiters();
    const started = Date.now();
    const pending = waiters.expect('a');
    setTimeout(() => waiters.notify('a'), 10);
    await pending.wait(5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(waiters.size).toBe(0);
  });

  it('does not miss an event that arrives between registering and waiting', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('a');
    const started = Date.now();
    await pending.wait(5_000);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('times out without an event, and forgets the waiter', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('b');
    await pending.wait(20);
    expect(waiters.size).toBe(0);
  });
});
