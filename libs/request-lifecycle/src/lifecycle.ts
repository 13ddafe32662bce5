/**
 * The one place that says how a classification request moves: its states, the events that move
 * it, and every timing rule. Pure code: the clock comes in as `now`, storage and the broker stay
 * outside. The gateway, the sweeper, the results recorder and the dead-letter handler all call
 * `transition` and persist what it returns. README.md beside this folder has the state diagram.
 *
 * Two rules carry everything else:
 * - Every request that has not ended carries exactly one timer, except one whose job the
 *   broker confirmed and no worker has started yet: a job waiting in its queue is not stale,
 *   however long the queue is.
 * - Timers live in fixed slots of SLOT_MS, so finding what is due is an equality look-up of a
 *   few slots, bounded by the work due, never a scan of history.
 */

export const LIFECYCLE_STATES = ['accepted', 'queued', 'assigned', 'classified', 'failed'] as const;
/**
 * - accepted: stored, its job not (yet) confirmed by the broker;
 * - queued: the broker confirmed the job, no worker has reported it started;
 * - assigned: a worker started it and holds a lease;
 * - classified, failed: ended, with exactly one recorded outcome.
 */
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export const TIMER_KINDS = ['publish', 'lease', 'dead-letter', 'webhook', 'purge-tokens', 'purge-image'] as const;
/**
 * - publish: the job was not confirmed in time; dispatch it (again);
 * - lease: a worker started the job and did not finish in time; dispatch again, or fail;
 * - dead-letter: the job used up its deliveries; fail it unless a result arrives first;
 * - webhook: the request ended and has a callback_url; POST its outcome (again);
 * - purge-tokens, purge-image: retention after the request ended (after its webhook, if any).
 */
export type TimerKind = (typeof TIMER_KINDS)[number];

export interface Timer {
  kind: TimerKind;
  dueAt: Date;
}

/**
 * Timer slot width. A constant, not a setting: stored slots must mean the same to every
 * replica and every version, or a timer would be looked for in the wrong slot.
 */
export const SLOT_MS = 5_000;

export function slotOf(date: Date): number {
  return Math.floor(date.getTime() / SLOT_MS);
}

export interface LifecyclePolicy {
  /** A dispatch not confirmed by the broker after this long is made again. Above the broker's confirm timeout. */
  publishGraceMs: number;
  /** Cap of the doubling wait between unconfirmed dispatches (a broker outage waits, never fails). */
  publishRetryMaxMs: number;
  /** A started job not finished after this long has lapsed. Above the slowest job. */
  leaseMs: number;
  /** Leases that may lapse before the request fails with NOT_COMPLETED: the confirmed, started dispatches it gets. */
  maxDispatches: number;
  /** A dead-lettered job fails its request after this long, so a result already on its way still wins. */
  deadLetterGraceMs: number;
  /** How long a dispatch token is valid. */
  tokenTtlMs: number;
  /** Tokens (and the idempotency record) are deleted this long after the request ended. */
  tokenRetentionMs: number;
  /** The image is deleted from storage this long after the request ended; null keeps it. */
  imageRetentionMs: number | null;
  /** A webhook is retried until this long after the request ended, then given up. */
  webhookRetryMs: number;
  /** The wait before the first webhook retry; it doubles with each attempt (with jitter). */
  webhookBackoffMs: number;
  /** The longest wait between two webhook attempts. */
  webhookBackoffMaxMs: number;
  /** A claimed webhook attempt not recorded after this long (its sender died) is made again. Above the attempt's timeout. */
  webhookAttemptMs: number;
}

export const defaultPolicy: LifecyclePolicy = {
  publishGraceMs: 30_000,
  publishRetryMaxMs: 5 * 60_000,
  leaseMs: 10 * 60_000,
  maxDispatches: 3,
  deadLetterGraceMs: 60_000,
  tokenTtlMs: 24 * 3_600_000,
  tokenRetentionMs: 24 * 3_600_000,
  imageRetentionMs: 30 * 24 * 3_600_000,
  webhookRetryMs: 24 * 3_600_000,
  webhookBackoffMs: 10_000,
  webhookBackoffMaxMs: 3_600_000,
  webhookAttemptMs: 15_000,
};

export const WEBHOOK_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];

/** A request's webhook: what the rules need of it. */
export interface WebhookView {
  status: WebhookStatus;
  /** Attempts recorded so far. */
  attempts: number;
}

/** What the rules need to know of a request. */
export interface LifecycleView {
  state: LifecycleState;
  /** Dispatches begun so far; the latest one's number. */
  dispatches: number;
  /** Leases that lapsed: a worker started a job of this request and did not finish it in time. */
  lapses: number;
  /** `started` reports from workers (a crash mid-job shows up as a second one). */
  attempts: number;
  completedAt: Date | null;
  timer: Timer | null;
  /** The webhook of a request submitted with a callback_url; null without one. */
  webhook: WebhookView | null;
}

export type LifecycleEvent =
  /** A dispatch is about to be published (a new token, job number `seq`). */
  | { type: 'dispatching'; seq: number }
  /** The broker confirmed job `seq`. */
  | { type: 'published'; seq: number }
  /** A worker reports it took job `seq`. */
  | { type: 'started'; seq: number }
  /** The outcome was recorded (by a worker's result or by a failure decided here). */
  | { type: 'finished'; outcome: 'classified' | 'failed' }
  /** Job `seq` used up its deliveries. */
  | { type: 'dead-lettered'; seq: number }
  /** The request's timer is due. */
  | { type: 'timer-fired' }
  /**
   * A webhook attempt ended: `delivered` (a 2xx), `failed` (retried while time is left) or
   * `refused` (its target is not allowed: never retried). `jitter`, from 0 to 1, spreads retries.
   */
  | { type: 'webhook-attempted'; outcome: 'delivered' | 'failed' | 'refused'; jitter: number };

/** What the caller must do after persisting the transition (or instead of it, see the sweeper). */
export type Effect =
  | { kind: 'dispatch'; seq: number }
  | { kind: 'fail'; code: 'NOT_COMPLETED' | 'DELIVERY_LIMIT'; message: string }
  | { kind: 'deliver-webhook'; attempt: number }
  | { kind: 'purge-tokens' }
  | { kind: 'purge-image' };

export interface Transition {
  view: LifecycleView;
  effect: Effect | null;
  /** False when the event changes nothing (late, duplicated or superseded): nothing to write. */
  changed: boolean;
}

const TERMINAL: ReadonlySet<LifecycleState> = new Set(['classified', 'failed']);

export function isTerminal(state: LifecycleState): boolean {
  return TERMINAL.has(state);
}

function at(now: Date, ms: number): Date {
  return new Date(now.getTime() + ms);
}

function publishWait(dispatches: number, policy: LifecyclePolicy): number {
  return Math.min(policy.publishRetryMaxMs, policy.publishGraceMs * 2 ** Math.max(0, dispatches - 1));
}

/** Retention's first step, never in the past (see notBefore). */
function retention(view: LifecycleView, now: Date, policy: LifecyclePolicy): Timer {
  return { kind: 'purge-tokens', dueAt: notBefore(now, at(view.completedAt ?? now, policy.tokenRetentionMs)) };
}

/** `due`, or `now` when it is earlier: a timer due before the sweeper's cursor would not be looked for. */
function notBefore(now: Date, due: Date): Date {
  return due.getTime() < now.getTime() ? now : due;
}

/** The wait after webhook attempt `attempt` failed: doubling from webhookBackoffMs, capped, between half and all of it. */
export function webhookBackoffMs(attempt: number, jitter: number, policy: LifecyclePolicy): number {
  const full = Math.min(policy.webhookBackoffMaxMs, policy.webhookBackoffMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(full * (0.5 + Math.min(1, Math.max(0, jitter)) / 2));
}

/** A new request: stored with its first dispatch begun, waiting for the broker's confirm. */
export function accept(now: Date, policy: LifecyclePolicy, options: { webhook?: boolean } = {}): LifecycleView {
  return {
    state: 'accepted',
    dispatches: 1,
    lapses: 0,
    attempts: 0,
    completedAt: null,
    timer: { kind: 'publish', dueAt: at(now, policy.publishGraceMs) },
    webhook: options.webhook ? { status: 'pending', attempts: 0 } : null,
  };
}

const unchanged = (view: LifecycleView): Transition => ({ view, effect: null, changed: false });

export function transition(view: LifecycleView, event: LifecycleEvent, now: Date, policy: LifecyclePolicy): Transition {
  const ended = isTerminal(view.state);
  switch (event.type) {
    case 'dispatching': {
      if (ended || event.seq <= view.dispatches) return unchanged(view);
      const dispatches = event.seq;
      return {
        view: {
          ...view,
          // A lapsed or unconfirmed job is being sent again: it waits for the broker's confirm.
          state: 'accepted',
          dispatches,
          timer: { kind: 'publish', dueAt: at(now, publishWait(dispatches, policy)) },
        },
        effect: null,
        changed: true,
      };
    }
    case 'published': {
      // Only the latest dispatch's confirm clears its timer; a worker may have started it already.
      if (ended || view.state !== 'accepted' || event.seq !== view.dispatches) return unchanged(view);
      return { view: { ...view, state: 'queued', timer: null }, effect: null, changed: true };
    }
    case 'started': {
      if (ended) return unchanged(view);
      if (view.timer?.kind === 'dead-letter') {
        // An older job's worker; the dead-letter decision about the latest one stands.
        return { view: { ...view, attempts: view.attempts + 1 }, effect: null, changed: true };
      }
      return {
        view: {
          ...view,
          state: 'assigned',
          attempts: view.attempts + 1,
          timer: { kind: 'lease', dueAt: at(now, policy.leaseMs) },
        },
        effect: null,
        changed: true,
      };
    }
    case 'finished': {
      if (ended) return unchanged(view);
      const done = { ...view, state: event.outcome, completedAt: now };
      return {
        view: {
          ...done,
          // The webhook is owed in the same write that ends the request: no crash can lose it.
          timer: view.webhook?.status === 'pending' ? { kind: 'webhook', dueAt: now } : retention(done, now, policy),
        },
        effect: null,
        changed: true,
      };
    }
    case 'webhook-attempted':
      return webhookAttempted(view, event, now, policy);
    case 'dead-lettered': {
      // A newer dispatch is under way, or the request ended: the dead job says nothing new.
      if (ended || event.seq !== view.dispatches || view.timer?.kind === 'dead-letter') return unchanged(view);
      return {
        view: { ...view, timer: { kind: 'dead-letter', dueAt: at(now, policy.deadLetterGraceMs) } },
        effect: null,
        changed: true,
      };
    }
    case 'timer-fired':
      return fire(view, now, policy);
  }
}

function fire(view: LifecycleView, now: Date, policy: LifecyclePolicy): Transition {
  const timer = view.timer;
  if (!timer || timer.dueAt.getTime() > now.getTime()) return unchanged(view);
  // Until the effect's own event is recorded, try again later: a failed effect is never dropped.
  const retry: Timer = { kind: timer.kind, dueAt: at(now, policy.publishGraceMs) };
  switch (timer.kind) {
    case 'publish':
      if (isTerminal(view.state)) break;
      return { view: { ...view, timer: retry }, effect: { kind: 'dispatch', seq: view.dispatches + 1 }, changed: true };
    case 'lease': {
      if (isTerminal(view.state)) break;
      const lapses = view.lapses + 1;
      if (lapses >= policy.maxDispatches) {
        return {
          view: { ...view, lapses, timer: retry },
          effect: {
            kind: 'fail',
            code: 'NOT_COMPLETED',
            message: `no worker finished this request within its lease (${Math.round(policy.leaseMs / 1000)} s), ${lapses} times`,
          },
          changed: true,
        };
      }
      return {
        view: { ...view, lapses, timer: retry },
        effect: { kind: 'dispatch', seq: view.dispatches + 1 },
        changed: true,
      };
    }
    case 'dead-letter':
      if (isTerminal(view.state)) break;
      return {
        view: { ...view, timer: retry },
        effect: {
          kind: 'fail',
          code: 'DELIVERY_LIMIT',
          message: 'no worker could finish this job: it used up its deliveries (a crash or failure every time)',
        },
        changed: true,
      };
    case 'webhook': {
      const webhook = view.webhook;
      if (!webhook || webhook.status !== 'pending') break;
      // Past its bounded time (the gateways were down that long): given up, though never before one attempt.
      if (webhook.attempts > 0 && now.getTime() > at(view.completedAt ?? now, policy.webhookRetryMs).getTime()) {
        return {
          view: { ...view, webhook: { ...webhook, status: 'failed' }, timer: retention(view, now, policy) },
          effect: null,
          changed: true,
        };
      }
      // The claim: written before the attempt, so an attempt whose sender dies is made again.
      return {
        view: { ...view, timer: { kind: 'webhook', dueAt: at(now, policy.webhookAttemptMs) } },
        effect: { kind: 'deliver-webhook', attempt: webhook.attempts + 1 },
        changed: true,
      };
    }
    case 'purge-tokens': {
      const completedAt = view.completedAt ?? now;
      const next: Timer | null =
        policy.imageRetentionMs === null
          ? null
          : { kind: 'purge-image', dueAt: notBefore(now, at(completedAt, policy.imageRetentionMs)) };
      return { view: { ...view, timer: next }, effect: { kind: 'purge-tokens' }, changed: true };
    }
    case 'purge-image':
      return { view: { ...view, timer: null }, effect: { kind: 'purge-image' }, changed: true };
  }
  // A publish, lease or dead-letter timer on a request that ended through another path (a
  // result won the race): go on to its webhook or retention. A webhook timer with nothing left
  // to deliver: retention.
  const webhookOwed = timer.kind !== 'webhook' && view.webhook?.status === 'pending';
  return {
    view: { ...view, timer: webhookOwed ? { kind: 'webhook', dueAt: now } : retention(view, now, policy) },
    effect: null,
    changed: true,
  };
}

function webhookAttempted(
  view: LifecycleView,
  event: Extract<LifecycleEvent, { type: 'webhook-attempted' }>,
  now: Date,
  policy: LifecyclePolicy,
): Transition {
  const webhook = view.webhook;
  // Only an attempt under a claim counts; one recorded after the request moved on changes nothing.
  if (!isTerminal(view.state) || !webhook || webhook.status !== 'pending' || view.timer?.kind !== 'webhook') {
    return unchanged(view);
  }
  const attempts = webhook.attempts + 1;
  const retryAt = at(now, webhookBackoffMs(attempts, event.jitter, policy));
  const deadline = at(view.completedAt ?? now, policy.webhookRetryMs);
  const status: WebhookStatus =
    event.outcome === 'delivered'
      ? 'delivered'
      : event.outcome === 'refused' || retryAt.getTime() > deadline.getTime()
        ? 'failed'
        : 'pending';
  return {
    view: {
      ...view,
      webhook: { status, attempts },
      timer: status === 'pending' ? { kind: 'webhook', dueAt: retryAt } : retention(view, now, policy),
    },
    effect: null,
    changed: true,
  };
}

/** The policy from the services' settings (libs/config `env.lifecycle`), in seconds and days. */
export function policyFromSettings(settings: {
  PUBLISH_GRACE_SECONDS: number;
  LEASE_SECONDS: number;
  MAX_DISPATCHES: number;
  DEAD_LETTER_GRACE_SECONDS: number;
  DISPATCH_TOKEN_TTL_SECONDS: number;
  TOKEN_RETENTION_SECONDS: number;
  IMAGE_RETENTION_DAYS: number;
  /** Webhook delivery (the gateway's settings); the defaults elsewhere (the results service only ends requests). */
  WEBHOOK_RETRY_SECONDS?: number;
  WEBHOOK_BACKOFF_SECONDS?: number;
  WEBHOOK_BACKOFF_MAX_SECONDS?: number;
  WEBHOOK_TIMEOUT_SECONDS?: number;
}): LifecyclePolicy {
  const seconds = (value: number | undefined, fallbackMs: number) => (value === undefined ? fallbackMs : value * 1000);
  return {
    publishGraceMs: settings.PUBLISH_GRACE_SECONDS * 1000,
    publishRetryMaxMs: Math.max(defaultPolicy.publishRetryMaxMs, settings.PUBLISH_GRACE_SECONDS * 1000),
    leaseMs: settings.LEASE_SECONDS * 1000,
    maxDispatches: settings.MAX_DISPATCHES,
    deadLetterGraceMs: settings.DEAD_LETTER_GRACE_SECONDS * 1000,
    tokenTtlMs: settings.DISPATCH_TOKEN_TTL_SECONDS * 1000,
    tokenRetentionMs: settings.TOKEN_RETENTION_SECONDS * 1000,
    imageRetentionMs: settings.IMAGE_RETENTION_DAYS === 0 ? null : settings.IMAGE_RETENTION_DAYS * 86_400_000,
    webhookRetryMs: seconds(settings.WEBHOOK_RETRY_SECONDS, defaultPolicy.webhookRetryMs),
    webhookBackoffMs: seconds(settings.WEBHOOK_BACKOFF_SECONDS, defaultPolicy.webhookBackoffMs),
    webhookBackoffMaxMs: seconds(settings.WEBHOOK_BACKOFF_MAX_SECONDS, defaultPolicy.webhookBackoffMaxMs),
    // The attempt's timeout and a margin for recording it.
    webhookAttemptMs:
      settings.WEBHOOK_TIMEOUT_SECONDS === undefined
        ? defaultPolicy.webhookAttemptMs
        : settings.WEBHOOK_TIMEOUT_SECONDS * 1000 + 5_000,
  };
}
