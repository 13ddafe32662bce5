import { CompletionWaiters } from './completion-waiters';

describe('CompletionWaiters', () => {
  it('wakes a waiter when its request is notified, long before its timeout', async () => {
    const waiters = new CompletionWaiters();
    const started = Date.now();
    const pending = waiters.expect('a');
    setTimeout(() => waiters.notify('a'), 10);
    await expect(pending.wait(5_000)).resolves.toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(waiters.size).toBe(0);
  });

  it('does not miss an event that arrives between registering and waiting', async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('a');
    const started = Date.now();
    await expect(pending.wait(5_000)).resolves.toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("times out when only another request's event comes, says so, and forgets the waiter", async () => {
    const waiters = new CompletionWaiters();
    const pending = waiters.expect('a');
    waiters.notify('b');
    const started = Date.now();
    await expect(pending.wait(50)).resolves.toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
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
