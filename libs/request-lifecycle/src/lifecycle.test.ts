import {
  accept,
  defaultPolicy,
  policyFromSettings,
  slotOf,
  SLOT_MS,
  transition,
  webhookBackoffMs,
  type LifecycleEvent,
  type LifecyclePolicy,
  type LifecycleView,
} from './lifecycle';

const policy: LifecyclePolicy = {
  publishGraceMs: 30_000,
  publishRetryMaxMs: 300_000,
  leaseMs: 600_000,
  maxDispatches: 3,
  deadLetterGraceMs: 60_000,
  tokenTtlMs: 86_400_000,
  tokenRetentionMs: 86_400_000,
  imageRetentionMs: 30 * 86_400_000,
  webhookRetryMs: 86_400_000,
  webhookBackoffMs: 10_000,
  webhookBackoffMaxMs: 3_600_000,
  webhookAttemptMs: 15_000,
};

/** A clock the test moves by hand: hours of timers run in microseconds. */
class Clock {
  private t = Date.UTC(2026, 10, 27, 12, 0, 0);
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): Date {
    this.t += ms;
    return this.now();
  }
}

function run(view: LifecycleView, event: LifecycleEvent, clock: Clock, p = policy) {
  return transition(view, event, clock.now(), p);
}

function dueIn(view: LifecycleView, clock: Clock): number | null {
  return view.timer ? view.timer.dueAt.getTime() - clock.now().getTime() : null;
}

describe('a request accepted', () => {
  it('is stored with its first dispatch begun and a publish timer at the grace', () => {
    const clock = new Clock();
    const view = accept(clock.now(), policy);
    expect(view).toMatchObject({ state: 'accepted', dispatches: 1, lapses: 0, attempts: 0, completedAt: null });
    expect(view.timer?.kind).toBe('publish');
    expect(dueIn(view, clock)).toBe(30_000);
  });

  it('is queued with no timer once the broker confirms its job: a job waiting in the queue is never stale', () => {
    const clock = new Clock();
    const { view, changed } = run(accept(clock.now(), policy), { type: 'published', seq: 1 }, clock);
    expect(changed).toBe(true);
    expect(view.state).toBe('queued');
    expect(view.timer).toBeNull();
    // Two hours later nothing fires: there is no timer to fire.
    clock.advance(2 * 3_600_000);
    expect(run(view, { type: 'timer-fired' }, clock).changed).toBe(false);
  });

  it('ignores the confirm of an older dispatch while a newer one waits for its own', () => {
    const clock = new Clock();
    const second = run(accept(clock.now(), policy), { type: 'dispatching', seq: 2 }, clock).view;
    const late = run(second, { type: 'published', seq: 1 }, clock);
    expect(late.changed).toBe(false);
    expect(late.view.timer?.kind).toBe('publish');
  });
});

describe('the publish timer', () => {
  it('does nothing before it is due', () => {
    const clock = new Clock();
    const view = accept(clock.now(), policy);
    clock.advance(29_999);
    expect(run(view, { type: 'timer-fired' }, clock).changed).toBe(false);
  });

  it('dispatches the next number when due, re-armed first so a failed dispatch is retried', () => {
    const clock = new Clock();
    const view = accept(clock.now(), policy);
    clock.advance(30_000);
    const fired = run(view, { type: 'timer-fired' }, clock);
    expect(fired.effect).toEqual({ kind: 'dispatch', seq: 2 });
    expect(fired.view.timer?.kind).toBe('publish');
    expect(dueIn(fired.view, clock)).toBe(30_000);
  });

  it('waits twice as long after each unconfirmed dispatch, up to the cap, and never fails the request', () => {
    const clock = new Clock();
    let view = accept(clock.now(), policy);
    const waits: number[] = [];
    for (let seq = 2; seq <= 10; seq++) {
      view = run(view, { type: 'dispatching', seq }, clock).view;
      waits.push(dueIn(view, clock)!);
      clock.advance(dueIn(view, clock)!);
      const fired = run(view, { type: 'timer-fired' }, clock);
      expect(fired.effect).toEqual({ kind: 'dispatch', seq: seq + 1 });
      view = fired.view;
    }
    expect(waits).toEqual([60_000, 120_000, 240_000, 300_000, 300_000, 300_000, 300_000, 300_000, 300_000]);
    expect(view.state).toBe('accepted');
  });

  it('does not count unconfirmed dispatches toward the limit', () => {
    const clock = new Clock();
    let view = accept(clock.now(), policy);
    for (let seq = 2; seq <= 6; seq++) view = run(view, { type: 'dispatching', seq }, clock).view;
    view = run(view, { type: 'published', seq: 6 }, clock).view;
    view = run(view, { type: 'started', seq: 6 }, clock).view;
    clock.advance(policy.leaseMs);
    // Five dispatches, one lease lapsed: dispatched again, not failed.
    expect(run(view, { type: 'timer-fired' }, clock).effect).toEqual({ kind: 'dispatch', seq: 7 });
  });

  it('refuses a dispatch number that was already made', () => {
    const clock = new Clock();
    const view = run(accept(clock.now(), policy), { type: 'dispatching', seq: 2 }, clock).view;
    expect(run(view, { type: 'dispatching', seq: 2 }, clock).changed).toBe(false);
    expect(run(view, { type: 'dispatching', seq: 1 }, clock).changed).toBe(false);
  });
});

describe('a started job and its lease', () => {
  function startedView(clock: Clock) {
    let view = accept(clock.now(), policy);
    view = run(view, { type: 'published', seq: 1 }, clock).view;
    return run(view, { type: 'started', seq: 1 }, clock).view;
  }

  it('assigns the request, counts the attempt and starts the lease', () => {
    const clock = new Clock();
    const view = startedView(clock);
    expect(view).toMatchObject({ state: 'assigned', attempts: 1 });
    expect(view.timer?.kind).toBe('lease');
    expect(dueIn(view, clock)).toBe(600_000);
  });

  it('renews the lease when the job is delivered again (a worker died)', () => {
    const clock = new Clock();
    let view = startedView(clock);
    clock.advance(100_000);
    view = run(view, { type: 'started', seq: 1 }, clock).view;
    expect(view.attempts).toBe(2);
    expect(dueIn(view, clock)).toBe(600_000);
  });

  it('may start before the confirm is recorded; the late confirm then changes nothing', () => {
    const clock = new Clock();
    let view = accept(clock.now(), policy);
    view = run(view, { type: 'started', seq: 1 }, clock).view;
    const confirm = run(view, { type: 'published', seq: 1 }, clock);
    expect(confirm.changed).toBe(false);
    expect(confirm.view.timer?.kind).toBe('lease');
  });

  it('dispatches again when the lease lapses, until it lapsed maxDispatches times, then fails NOT_COMPLETED', () => {
    const clock = new Clock();
    let view = startedView(clock);
    const effects = [];
    for (let lapse = 1; lapse <= 3; lapse++) {
      clock.advance(policy.leaseMs);
      const fired = run(view, { type: 'timer-fired' }, clock);
      effects.push(fired.effect);
      expect(fired.view.lapses).toBe(lapse);
      view = fired.view;
      // A new dispatch is published and started in turn, so its lease can lapse too.
      if (fired.effect?.kind === 'dispatch') {
        view = run(view, { type: 'dispatching', seq: fired.effect.seq }, clock).view;
        view = run(view, { type: 'published', seq: fired.effect.seq }, clock).view;
        view = run(view, { type: 'started', seq: fired.effect.seq }, clock).view;
      }
    }
    expect(effects).toMatchObject([
      { kind: 'dispatch', seq: 2 },
      { kind: 'dispatch', seq: 3 },
      { kind: 'fail', code: 'NOT_COMPLETED' },
    ]);
    // Until the failure is recorded, the timer is armed again.
    expect(view.timer?.kind).toBe('lease');
  });
});

describe('finishing', () => {
  it('ends the request once, and arms token retention', () => {
    const clock = new Clock();
    const view = accept(clock.now(), policy);
    const done = run(view, { type: 'finished', outcome: 'classified' }, clock);
    expect(done.view).toMatchObject({ state: 'classified', completedAt: clock.now() });
    expect(done.view.timer?.kind).toBe('purge-tokens');
    expect(dueIn(done.view, clock)).toBe(policy.tokenRetentionMs);
    expect(run(done.view, { type: 'finished', outcome: 'failed' }, clock).changed).toBe(false);
  });

  it('ignores every event after the end', () => {
    const clock = new Clock();
    const done = run(accept(clock.now(), policy), { type: 'finished', outcome: 'failed' }, clock).view;
    for (const event of [
      { type: 'dispatching', seq: 2 },
      { type: 'published', seq: 1 },
      { type: 'started', seq: 1 },
      { type: 'dead-lettered', seq: 1 },
    ] as LifecycleEvent[]) {
      expect(run(done, event, clock).changed).toBe(false);
    }
  });

  it('moves a request that ended by another path from a stale timer to its retention', () => {
    const clock = new Clock();
    // A late `started` wrote a lease over an outcome (FerretDB cannot make that write conditional).
    const stale: LifecycleView = {
      ...run(accept(clock.now(), policy), { type: 'finished', outcome: 'classified' }, clock).view,
      timer: { kind: 'lease', dueAt: clock.advance(1000) },
    };
    const fired = run(stale, { type: 'timer-fired' }, clock);
    expect(fired.effect).toBeNull();
    expect(fired.view.timer?.kind).toBe('purge-tokens');
  });
});

describe('retention', () => {
  it('purges tokens, then the image at its own retention, then nothing more', () => {
    const clock = new Clock();
    const ended = run(accept(clock.now(), policy), { type: 'finished', outcome: 'classified' }, clock).view;
    const endedAt = clock.now().getTime();
    clock.advance(policy.tokenRetentionMs);
    const tokens = run(ended, { type: 'timer-fired' }, clock);
    expect(tokens.effect).toEqual({ kind: 'purge-tokens' });
    expect(tokens.view.timer).toEqual({ kind: 'purge-image', dueAt: new Date(endedAt + policy.imageRetentionMs!) });
    clock.advance(policy.imageRetentionMs! - policy.tokenRetentionMs);
    const image = run(tokens.view, { type: 'timer-fired' }, clock);
    expect(image.effect).toEqual({ kind: 'purge-image' });
    expect(image.view.timer).toBeNull();
  });

  it('keeps images when their retention is off', () => {
    const clock = new Clock();
    const keep = { ...policy, imageRetentionMs: null };
    const ended = run(accept(clock.now(), keep), { type: 'finished', outcome: 'failed' }, clock, keep).view;
    clock.advance(keep.tokenRetentionMs);
    const tokens = run(ended, { type: 'timer-fired' }, clock, keep);
    expect(tokens.effect).toEqual({ kind: 'purge-tokens' });
    expect(tokens.view.timer).toBeNull();
  });
});

describe('dead-lettering', () => {
  function queued(clock: Clock) {
    return run(accept(clock.now(), policy), { type: 'published', seq: 1 }, clock).view;
  }

  it('fails the request DELIVERY_LIMIT only after the grace, so a result on its way still wins', () => {
    const clock = new Clock();
    const dead = run(queued(clock), { type: 'dead-lettered', seq: 1 }, clock).view;
    expect(dead.timer?.kind).toBe('dead-letter');
    clock.advance(policy.deadLetterGraceMs - 1);
    expect(run(dead, { type: 'timer-fired' }, clock).changed).toBe(false);
    // The result arrives within the grace: it ends the request, and the timer then does nothing.
    const classified = run(dead, { type: 'finished', outcome: 'classified' }, clock).view;
    expect(classified.state).toBe('classified');
    clock.advance(1);
    expect(run(dead, { type: 'timer-fired' }, clock).effect).toMatchObject({ kind: 'fail', code: 'DELIVERY_LIMIT' });
  });

  it('is superseded by a newer dispatch of the same request', () => {
    const clock = new Clock();
    const second = run(queued(clock), { type: 'dispatching', seq: 2 }, clock).view;
    expect(run(second, { type: 'dead-lettered', seq: 1 }, clock).changed).toBe(false);
  });

  it('keeps its decision when a worker of an older job reports started', () => {
    const clock = new Clock();
    const dead = run(queued(clock), { type: 'dead-lettered', seq: 1 }, clock).view;
    const started = run(dead, { type: 'started', seq: 1 }, clock).view;
    expect(started.timer?.kind).toBe('dead-letter');
    expect(started.attempts).toBe(1);
  });

  it('is decided once when the dead job is delivered twice', () => {
    const clock = new Clock();
    const dead = run(queued(clock), { type: 'dead-lettered', seq: 1 }, clock).view;
    clock.advance(10_000);
    expect(run(dead, { type: 'dead-lettered', seq: 1 }, clock).changed).toBe(false);
  });
});

describe('timer slots', () => {
  it('puts every instant of one slot in the same slot and the next instant in the next', () => {
    const start = new Date(SLOT_MS * 1000);
    expect(slotOf(start)).toBe(1000);
    expect(slotOf(new Date(start.getTime() + SLOT_MS - 1))).toBe(1000);
    expect(slotOf(new Date(start.getTime() + SLOT_MS))).toBe(1001);
  });
});

describe('policyFromSettings', () => {
  const settings = {
    PUBLISH_GRACE_SECONDS: 10,
    LEASE_SECONDS: 120,
    MAX_DISPATCHES: 2,
    DEAD_LETTER_GRACE_SECONDS: 5,
    DISPATCH_TOKEN_TTL_SECONDS: 3600,
    TOKEN_RETENTION_SECONDS: 7200,
    IMAGE_RETENTION_DAYS: 0,
  };

  it('converts seconds and days, and 0 image retention keeps images', () => {
    const p = policyFromSettings(settings);
    expect(p).toEqual({
      publishGraceMs: 10_000,
      publishRetryMaxMs: defaultPolicy.publishRetryMaxMs,
      leaseMs: 120_000,
      maxDispatches: 2,
      deadLetterGraceMs: 5_000,
      tokenTtlMs: 3_600_000,
      tokenRetentionMs: 7_200_000,
      imageRetentionMs: null,
      webhookRetryMs: defaultPolicy.webhookRetryMs,
      webhookBackoffMs: defaultPolicy.webhookBackoffMs,
      webhookBackoffMaxMs: defaultPolicy.webhookBackoffMaxMs,
      webhookAttemptMs: defaultPolicy.webhookAttemptMs,
    });
  });

  it("takes the gateway's webhook settings, the attempt's claim outlasting its timeout", () => {
    const p = policyFromSettings({
      ...settings,
      WEBHOOK_RETRY_SECONDS: 600,
      WEBHOOK_BACKOFF_SECONDS: 1,
      WEBHOOK_BACKOFF_MAX_SECONDS: 60,
      WEBHOOK_TIMEOUT_SECONDS: 10,
    });
    expect(p).toMatchObject({
      webhookRetryMs: 600_000,
      webhookBackoffMs: 1_000,
      webhookBackoffMaxMs: 60_000,
      webhookAttemptMs: 15_000,
    });
  });
});

describe('a webhook', () => {
  /** A request submitted with a callback_url, ended now. */
  function ended(clock: Clock, outcome: 'classified' | 'failed' = 'classified', p = policy) {
    const view = accept(clock.now(), p, { webhook: true });
    return run(view, { type: 'finished', outcome }, clock, p).view;
  }
  /** Fires the webhook timer (the claim) and records an attempt. */
  function attempt(view: LifecycleView, clock: Clock, outcome: 'delivered' | 'failed' | 'refused', jitter = 1) {
    const claimed = run(view, { type: 'timer-fired' }, clock);
    expect(claimed.effect).toEqual({ kind: 'deliver-webhook', attempt: (view.webhook?.attempts ?? 0) + 1 });
    return run(claimed.view, { type: 'webhook-attempted', outcome, jitter }, clock);
  }

  it('is owed, due at once, by the same transition that ends the request (classified or failed)', () => {
    for (const outcome of ['classified', 'failed'] as const) {
      const clock = new Clock();
      const view = ended(clock, outcome);
      expect(view.timer).toEqual({ kind: 'webhook', dueAt: clock.now() });
      expect(view.webhook).toEqual({ status: 'pending', attempts: 0 });
    }
  });

  it('is claimed when fired: the timer moves past the attempt, so a sender that dies is replaced', () => {
    const clock = new Clock();
    const claimed = run(ended(clock), { type: 'timer-fired' }, clock);
    expect(claimed.effect).toEqual({ kind: 'deliver-webhook', attempt: 1 });
    expect(claimed.view.timer?.kind).toBe('webhook');
    expect(dueIn(claimed.view, clock)).toBe(policy.webhookAttemptMs);
    // A second replica firing the same timer now finds it not due: nothing to do.
    expect(run(claimed.view, { type: 'timer-fired' }, clock).changed).toBe(false);
    // Its sender died: the claim lapses and the attempt is made again (still attempt 1).
    clock.advance(policy.webhookAttemptMs);
    expect(run(claimed.view, { type: 'timer-fired' }, clock).effect).toEqual({ kind: 'deliver-webhook', attempt: 1 });
  });

  it('delivered, goes on to retention counted from the end of the request', () => {
    const clock = new Clock();
    const endedAt = clock.now().getTime();
    const view = ended(clock);
    clock.advance(2_000);
    const delivered = attempt(view, clock, 'delivered').view;
    expect(delivered.webhook).toEqual({ status: 'delivered', attempts: 1 });
    expect(delivered.timer).toEqual({ kind: 'purge-tokens', dueAt: new Date(endedAt + policy.tokenRetentionMs) });
    // A late record of the same attempt (a duplicate sender) changes nothing.
    expect(run(delivered, { type: 'webhook-attempted', outcome: 'failed', jitter: 0 }, clock).changed).toBe(false);
  });

  it('failing, is retried with a doubling, capped and jittered wait, then given up after its bounded time', () => {
    const clock = new Clock();
    let view = ended(clock);
    const waits: number[] = [];
    while (view.webhook?.status === 'pending') {
      view = attempt(view, clock, 'failed', 1).view;
      if (view.timer?.kind !== 'webhook') break;
      waits.push(dueIn(view, clock)!);
      clock.advance(dueIn(view, clock)!);
    }
    expect(waits.slice(0, 4)).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(Math.max(...waits)).toBe(policy.webhookBackoffMaxMs);
    expect(view.webhook?.status).toBe('failed');
    expect(view.timer?.kind).toBe('purge-tokens');
    // Every attempt happened within the bounded time from the end of the request.
    expect(clock.now().getTime() - Date.UTC(2026, 10, 27, 12, 0, 0)).toBeLessThanOrEqual(policy.webhookRetryMs);
    expect(view.webhook?.attempts).toBe(waits.length + 1);
  });

  it('spreads retries by jitter between half and all of the wait', () => {
    expect(webhookBackoffMs(1, 0, policy)).toBe(5_000);
    expect(webhookBackoffMs(1, 1, policy)).toBe(10_000);
    expect(webhookBackoffMs(3, 0.5, policy)).toBe(30_000);
    expect(webhookBackoffMs(40, 1, policy)).toBe(policy.webhookBackoffMaxMs);
  });

  it('refused by the address guard, is given up at once', () => {
    const clock = new Clock();
    const refused = attempt(ended(clock), clock, 'refused').view;
    expect(refused.webhook).toEqual({ status: 'failed', attempts: 1 });
    expect(refused.timer?.kind).toBe('purge-tokens');
  });

  it('found due after its bounded time (the gateways were down) gets one attempt, then is given up', () => {
    const clock = new Clock();
    const first = ended(clock);
    clock.advance(2 * policy.webhookRetryMs);
    const late = attempt(first, clock, 'failed');
    expect(late.view.webhook?.status).toBe('failed');
    const endedLong = run(ended(clock), { type: 'timer-fired' }, clock).view;
    const failedOnce = run(endedLong, { type: 'webhook-attempted', outcome: 'failed', jitter: 0 }, clock).view;
    clock.advance(2 * policy.webhookRetryMs);
    const given = run(failedOnce, { type: 'timer-fired' }, clock);
    expect(given.effect).toBeNull();
    expect(given.view.webhook?.status).toBe('failed');
    expect(given.view.timer?.kind).toBe('purge-tokens');
    // Retention long due: due now, never in a slot the sweeper has passed.
    expect(given.view.timer?.dueAt).toEqual(clock.now());
  });

  it('is owed when a stale timer finds the request ended by another path', () => {
    const clock = new Clock();
    const stale: LifecycleView = { ...ended(clock), timer: { kind: 'lease', dueAt: clock.advance(1000) } };
    const fired = run(stale, { type: 'timer-fired' }, clock);
    expect(fired.effect).toBeNull();
    expect(fired.view.timer).toEqual({ kind: 'webhook', dueAt: clock.now() });
  });

  it('ignores an attempt recorded on a request that is not waiting for one', () => {
    const clock = new Clock();
    const open = accept(clock.now(), policy, { webhook: true });
    expect(run(open, { type: 'webhook-attempted', outcome: 'delivered', jitter: 0 }, clock).changed).toBe(false);
    const plain = run(accept(clock.now(), policy), { type: 'finished', outcome: 'classified' }, clock).view;
    expect(plain.timer?.kind).toBe('purge-tokens');
    expect(run(plain, { type: 'webhook-attempted', outcome: 'delivered', jitter: 0 }, clock).changed).toBe(false);
  });

  it('leaves retention running after it: tokens, then the image', () => {
    const clock = new Clock();
    const delivered = attempt(ended(clock), clock, 'delivered').view;
    clock.advance(policy.tokenRetentionMs);
    const tokens = run(delivered, { type: 'timer-fired' }, clock);
    expect(tokens.effect).toEqual({ kind: 'purge-tokens' });
    expect(tokens.view.timer?.kind).toBe('purge-image');
    expect(tokens.view.webhook?.status).toBe('delivered');
  });
});
