import { DependenciesNotReadyError, DependencyGate, type DependencyGateOptions } from './dependency-gate';
import type { Timers } from './timers';

/** Time that moves only when a test says so. */
class ManualTimers implements Timers {
  now = 0;
  private seq = 0;
  private pending: { at: number; seq: number; callback: () => void }[] = [];

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { at: this.now + ms, seq: ++this.seq, callback };
    this.pending.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((t) => t !== handle);
  }
  get scheduled(): number {
    return this.pending.length;
  }
  /** Fires every timer due within `ms`, in order, letting promise chains settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    await settle();
    for (;;) {
      const next = [...this.pending].sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next || next.at > target) break;
      this.pending = this.pending.filter((t) => t !== next);
      this.now = next.at;
      next.callback();
      await settle();
    }
    this.now = target;
  }
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A dependency the test switches up and down; `hang` makes its check never answer. */
function dependency() {
  const dep = {
    up: true,
    hang: false,
    calls: 0,
    check: async () => {
      dep.calls += 1;
      if (dep.hang) return new Promise<void>(() => {});
      if (!dep.up) throw new Error('connect ECONNREFUSED');
    },
  };
  return dep;
}

function gateWith(options: Partial<DependencyGateOptions> & Pick<DependencyGateOptions, 'checks'>) {
  const timers = new ManualTimers();
  const events: string[] = [];
  const gate = new DependencyGate({
    intervalMs: 1_000,
    timeoutMs: 200,
    onDown: (report) => {
      const down = Object.entries(report.dependencies).filter(([, s]) => !s.up);
      events.push(`down ${down.map(([name]) => name).join(',')}`);
    },
    onUp: () => {
      events.push('up');
    },
    timers,
    ...options,
  });
  return { gate, timers, events };
}

describe('DependencyGate', () => {
  it('is not ready before its first round, and opens with onUp when everything answers', async () => {
    const s3 = dependency();
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check } });
    expect(gate.ready).toBe(false);
    expect(gate.report).toBeNull();
    const waiting = gate.waitUntilReady();
    gate.start();
    await timers.advance(0);
    await expect(waiting).resolves.toBeUndefined();
    expect(gate.ready).toBe(true);
    expect(gate.report?.status).toBe('ok');
    expect(events).toEqual(['up']);
    gate.stop();
  });

  it('calls onDown once when a dependency goes down and onUp once when it is back', async () => {
    const s3 = dependency();
    const db = dependency();
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check, db: db.check } });
    gate.start();
    await timers.advance(0);
    s3.up = false;
    await timers.advance(5_000); // five failing rounds: one change
    expect(gate.ready).toBe(false);
    expect(gate.report?.dependencies.s3).toMatchObject({ up: false, error: 'connect ECONNREFUSED' });
    s3.up = true;
    await timers.advance(1_000);
    expect(gate.ready).toBe(true);
    expect(events).toEqual(['up', 'down s3', 'up']);
    expect(s3.calls).toBe(7); // at 0 ms, then every second
    gate.stop();
  });

  it('reports the first verdict even when it is down', async () => {
    const s3 = dependency();
    s3.up = false;
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    await timers.advance(0);
    expect(events).toEqual(['down s3']);
    gate.stop();
  });

  it('ignores a blip shorter than downAfter rounds, and waits upAfter good rounds to reopen', async () => {
    const s3 = dependency();
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check }, downAfter: 2, upAfter: 3 });
    gate.start();
    await timers.advance(0);
    s3.up = false;
    await timers.advance(1_000);
    expect(gate.ready).toBe(true); // one failed round: a blip
    s3.up = true;
    await timers.advance(1_000);
    s3.up = false;
    await timers.advance(2_000);
    expect(events).toEqual(['up', 'down s3']);
    s3.up = true;
    await timers.advance(2_000);
    expect(gate.ready).toBe(false); // two good rounds of three
    await timers.advance(1_000);
    expect(events).toEqual(['up', 'down s3', 'up']);
    gate.stop();
  });

  it('counts a check that does not answer within timeoutMs as down', async () => {
    const s3 = dependency();
    s3.hang = true;
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    await timers.advance(199);
    expect(events).toEqual([]);
    await timers.advance(1);
    expect(events).toEqual(['down s3']);
    expect(gate.report?.dependencies.s3?.error).toBe('no answer within 200 ms');
    gate.stop();
  });

  it('starts the next round an interval after the previous one ends, never two at once', async () => {
    const s3 = dependency();
    s3.hang = true;
    const { gate, timers } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    gate.start(); // idempotent
    await timers.advance(1_199); // round 1 ends at 200 ms; round 2 starts at 1 200 ms
    expect(s3.calls).toBe(1);
    await timers.advance(1);
    expect(s3.calls).toBe(2);
    gate.stop();
  });

  it('waits for a slow callback before the next round, so onDown and onUp never overlap', async () => {
    const s3 = dependency();
    let releaseDown = () => {};
    const log: string[] = [];
    const { gate, timers } = gateWith({
      checks: { s3: s3.check },
      onDown: () =>
        new Promise<void>((resolve) => {
          log.push('down begins');
          releaseDown = () => {
            log.push('down ends');
            resolve();
          };
        }),
      onUp: () => {
        log.push('up');
      },
    });
    s3.up = false;
    gate.start();
    await timers.advance(0);
    s3.up = true;
    await timers.advance(10_000);
    expect(log).toEqual(['down begins']);
    releaseDown();
    await timers.advance(1_000);
    expect(log).toEqual(['down begins', 'down ends', 'up']);
    gate.stop();
  });

  it('keeps watching when a callback throws', async () => {
    const s3 = dependency();
    const calls: string[] = [];
    const { gate, timers } = gateWith({
      checks: { s3: s3.check },
      onUp: () => {
        calls.push('up');
        throw new Error('resume failed');
      },
      onDown: () => {
        calls.push('down');
      },
    });
    gate.start();
    await timers.advance(0);
    s3.up = false;
    await timers.advance(1_000);
    expect(calls).toEqual(['up', 'down']);
    gate.stop();
  });

  it('waitUntilReady gives up after its timeout, naming what is down', async () => {
    const s3 = dependency();
    s3.up = false;
    const { gate, timers } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    const waiting = gate.waitUntilReady({ timeoutMs: 3_000 });
    const outcome = waiting.catch((error: unknown) => error);
    await timers.advance(2_999);
    await timers.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(DependenciesNotReadyError);
    expect((error as Error).message).toBe('not ready after 3000 ms: s3: connect ECONNREFUSED');
    gate.stop();
  });

  it('waitUntilReady resolves when the gate opens before its timeout, and clears that timer', async () => {
    const s3 = dependency();
    s3.up = false;
    const { gate, timers } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    await timers.advance(0);
    const waiting = gate.waitUntilReady({ timeoutMs: 60_000 });
    s3.up = true;
    await timers.advance(1_000);
    await expect(waiting).resolves.toBeUndefined();
    gate.stop();
    expect(timers.scheduled).toBe(0);
  });

  it('waitUntilReady rejects on abort and when the gate stops', async () => {
    const s3 = dependency();
    s3.up = false;
    const { gate, timers } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    await timers.advance(0);
    const controller = new AbortController();
    const aborted = gate.waitUntilReady({ signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toThrow('not ready: s3: connect ECONNREFUSED (aborted)');
    await expect(gate.waitUntilReady({ signal: controller.signal })).rejects.toThrow(/aborted/);

    const stopped = gate.waitUntilReady();
    gate.stop();
    await expect(stopped).rejects.toThrow('dependency gate stopped');
    await expect(gate.waitUntilReady()).rejects.toThrow('dependency gate stopped');
  });

  it('calls nothing once stopped, even for a round that was under way', async () => {
    const s3 = dependency();
    s3.hang = true;
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check } });
    gate.start();
    await timers.advance(100);
    gate.stop();
    await timers.advance(10_000);
    expect(events).toEqual([]);
    expect(s3.calls).toBe(1);
  });

  it('check() runs a round on demand, joining one under way', async () => {
    const s3 = dependency();
    const { gate, timers, events } = gateWith({ checks: { s3: s3.check } });
    const [a, b] = [gate.check(), gate.check()];
    await timers.advance(0);
    expect(await a).toBe(await b);
    expect(s3.calls).toBe(1);
    expect(events).toEqual(['up']);
  });
});
