/**
 * Requests being waited on (GET …?wait=N) in this gateway, woken by the results service's
 * "request ended" events. Events are hints: a waiter that misses one still wakes at its
 * timeout and reads the database, so nothing depends on their delivery.
 */
export class CompletionWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();
  private closedFlag = false;

  /** True once the gateway is closing: long-polls answer with what they have. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Wakes every waiter, so open long-polls finish before the server closes. */
  close(): void {
    this.closedFlag = true;
    for (const id of [...this.waiting.keys()]) this.notify(id);
  }

  /** Registers before the caller reads the state, so an event in between is not missed. */
  /** `wait` resolves true when an event (or closing) woke it, false when `ms` passed first. */
  expect(requestId: string): { wait(ms: number): Promise<boolean>; cancel(): void } {
    let wake!: () => void;
    if (this.closedFlag) return { wait: async () => true, cancel: () => undefined };
    const woken = new Promise<boolean>((resolve) => {
      wake = () => resolve(true);
    });
    const set = this.waiting.get(requestId) ?? new Set();
    set.add(wake);
    this.waiting.set(requestId, set);
    const cancel = () => {
      set.delete(wake);
      if (set.size === 0 && this.waiting.get(requestId) === set) this.waiting.delete(requestId);
    };
    return {
      wait: async (ms) => {
        let timer: NodeJS.Timeout | undefined;
        const byEvent = await Promise.race([
          woken,
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
        ]);
        clearTimeout(timer);
        cancel();
        return byEvent;
      },
      cancel,
    };
  }

  notify(requestId: string): void {
    const set = this.waiting.get(requestId);
    if (!set) return;
    this.waiting.delete(requestId);
    for (const wake of set) wake();
  }

  get size(): number {
    return this.waiting.size;
  }
}
