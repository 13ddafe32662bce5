import { admission, BacklogMonitor, DrainRate, type SheddingSettings } from './shedding';

const settings: SheddingSettings = {
  maxBacklogSeconds: 120,
  maxQueuedJobs: 0,
  drainRateFloor: 1,
  maxRetryAfterSeconds: 300,
};

describe('admission', () => {
  it('admits while the backlog drains within maxBacklogSeconds at the observed rate', () => {
    expect(admission(0, 0, settings)).toEqual({ shed: false });
    expect(admission(1999, 20, settings)).toEqual({ shed: false });
  });

  it('sheds beyond it, with a Retry-After of the time to drain the excess', () => {
    // 20/s × 120 s = 2400 jobs: the 2401st waits too long.
    expect(admission(2400, 20, settings)).toEqual({ shed: true, reason: 'backlog', retryAfterSeconds: 1, limit: 2400 });
    expect(admission(3399, 20, settings)).toMatchObject({ shed: true, retryAfterSeconds: 50 });
  });

  it('assumes the floor when little or nothing was observed (a cold start with a deep queue)', () => {
    expect(admission(119, 0, settings)).toEqual({ shed: false });
    expect(admission(120, 0, settings)).toMatchObject({ shed: true, reason: 'backlog', limit: 120 });
    expect(admission(120, Number.NaN, settings)).toMatchObject({ shed: true, limit: 120 });
  });

  it('caps Retry-After', () => {
    expect(admission(1_000_000, 0, settings)).toMatchObject({ shed: true, retryAfterSeconds: 300 });
  });

  it('applies the absolute MAX_QUEUED_JOBS guard whatever the rate', () => {
    const guarded = { ...settings, maxQueuedJobs: 500 };
    expect(admission(499, 1000, guarded)).toEqual({ shed: false });
    expect(admission(500, 1000, guarded)).toEqual({
      shed: true,
      reason: 'queue-full',
      retryAfterSeconds: 1,
      limit: 500,
    });
  });

  it('sheds nothing on an unknown depth, or with both rules off', () => {
    expect(admission(null, 0, { ...settings, maxQueuedJobs: 1 })).toEqual({ shed: false });
    expect(admission(1_000_000, 0, { ...settings, maxBacklogSeconds: 0 })).toEqual({ shed: false });
  });
});

describe('DrainRate', () => {
  it('averages the requests ended over the last minute, over at least 10 s', () => {
    const t0 = 1_000_000_000;
    const rate = new DrainRate(t0);
    rate.record(t0);
    expect(rate.perSecond(t0)).toBeCloseTo(0.1);
    for (let s = 0; s < 60; s++) for (let i = 0; i < 5; i++) rate.record(t0 + s * 1000);
    expect(rate.perSecond(t0 + 59_000)).toBeCloseTo(5, 0);
    // A minute later, all of it has left the window.
    expect(rate.perSecond(t0 + 125_000)).toBe(0);
  });

  it('measures capacity in the seconds the queue was busy, which idle seconds would understate', () => {
    const t0 = 2_000_000_000;
    const rate = new DrainRate(t0);
    for (let s = 0; s < 10; s++) {
      rate.markBusy(true, t0 + s * 1000);
      for (let i = 0; i < 20; i++) rate.record(t0 + s * 1000);
    }
    for (let s = 10; s < 60; s++) rate.markBusy(false, t0 + s * 1000);
    // 200 ended in a minute is 3.3/s on average, but 20/s while the workers had work.
    expect(rate.perSecond(t0 + 59_000)).toBeCloseTo(20);
  });

  it('keeps a bounded window however long the gap between calls', () => {
    const rate = new DrainRate(0);
    rate.record(0);
    expect(rate.perSecond(10 ** 12)).toBe(0);
  });
});

describe('BacklogMonitor', () => {
  const guarded = { ...settings, maxQueuedJobs: 3 };

  it('sheds on the latest sample plus the jobs accepted since it', async () => {
    let depth = 0;
    let now = 1_000_000;
    const monitor = new BacklogMonitor(async () => depth, guarded, { now: () => now });
    expect(monitor.admit()).toEqual({ shed: false }); // no sample yet
    await monitor.sample();
    monitor.accepted();
    monitor.accepted();
    expect(monitor.admit()).toEqual({ shed: false });
    monitor.accepted();
    expect(monitor.admit()).toMatchObject({ shed: true, reason: 'queue-full' });
    depth = 1;
    now += 1000;
    await monitor.sample();
    expect(monitor.admit()).toEqual({ shed: false });
  });

  it('does not shed on a stale sample (the broker is down) or after the connection dropped', async () => {
    let now = 1_000_000;
    let fail = false;
    const monitor = new BacklogMonitor(
      async () => {
        if (fail) throw new Error('not connected');
        return 50;
      },
      guarded,
      { now: () => now, staleMs: 5000 },
    );
    await monitor.sample();
    expect(monitor.admit().shed).toBe(true);
    fail = true;
    now += 6000;
    await monitor.sample();
    expect(monitor.admit()).toEqual({ shed: false });
    fail = false;
    await monitor.sample();
    expect(monitor.admit().shed).toBe(true);
    monitor.invalidate();
    expect(monitor.admit()).toEqual({ shed: false });
  });

  it('is off with both rules at 0', async () => {
    const monitor = new BacklogMonitor(async () => 1_000_000, { ...settings, maxBacklogSeconds: 0 });
    expect(monitor.enabled).toBe(false);
    await monitor.sample();
    expect(monitor.admit()).toEqual({ shed: false });
  });

  it('never runs two checks at once', async () => {
    let calls = 0;
    let release!: () => void;
    const monitor = new BacklogMonitor(async () => {
      calls += 1;
      await new Promise<void>((resolve) => (release = resolve));
      return 0;
    }, settings);
    const first = monitor.sample();
    await monitor.sample();
    release();
    await first;
    expect(calls).toBe(1);
  });
});
