import {
  dispatchClaimId,
  idempotencyRecordId,
  lifecycleView,
  type ClassificationRequests,
  type Models,
  type RequestRecord,
} from '@cxr/db';
import type { Logger } from '@cxr/logging';
import { slotOf, transition, type Effect } from '@cxr/request-lifecycle';
import type { ObjectStore } from '@cxr/storage';
import type { WebhookDeliverer } from '../webhooks/deliverer';
import type { Dispatcher } from './dispatcher';

export interface SweeperOptions {
  intervalMs: number;
  /** Slots looked at in one pass at most, so catching up after a long stop is spread out. Default 720 (an hour). */
  maxSlotsPerPass?: number;
}

const CURSOR_ID = 'timers';
/** Where a database without a cursor starts: timers cannot be older than the database. */
const FIRST_LOOKBACK_SLOTS = 12;

/**
 * Acts on the requests whose lifecycle timer fell due: dispatches again what was never
 * confirmed or whose lease lapsed, fails what used up its dispatches or deliveries, sends
 * webhooks (again), and applies retention. It looks up only the timer slots between its cursor and now (an equality per
 * slot), so its cost follows the timers due, not the requests stored. Safe in every gateway
 * replica: dispatches are claimed, outcomes are arbitrated by the result's primary key, and
 * retention is idempotent.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private cursor: number | null = null;

  constructor(
    private readonly deps: {
      requests: ClassificationRequests;
      models: Models;
      dispatcher: Dispatcher;
      store: ObjectStore;
      webhooks: WebhookDeliverer;
      logger: Logger;
    },
    private readonly options: SweeperOptions,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => this.deps.logger.warn({ err: error }, 'sweep failed; will retry'))
        .finally(() => {
          this.running = null;
          if (!this.stopped) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /**
   * One pass over the slots from the cursor to now; returns how many requests it acted on.
   * The cursor moves only after every request of the passed slots was handled or re-armed, so a
   * pass that fails (database down) is simply repeated.
   */
  async sweep(): Promise<number> {
    const { requests, models } = this.deps;
    const now = requests.now();
    const current = slotOf(now);
    if (this.cursor === null) {
      const stored = await models.TimerCursor.findById(CURSOR_ID).lean();
      this.cursor = stored?.slot ?? current - FIRST_LOOKBACK_SLOTS;
    }
    // One slot of overlap: a replica whose clock is a little behind may still arm a timer there.
    const from = this.cursor - 1;
    const to = Math.min(current, from + (this.options.maxSlotsPerPass ?? 720));
    let acted = 0;
    for (let slot = from; slot <= to; slot++) {
      for (const doc of await requests.due(slot)) {
        if (await this.fire(doc)) acted += 1;
      }
    }
    // Slot `to` may still get timers due later in it: the next pass starts there again.
    this.cursor = to;
    await models.TimerCursor.updateOne({ _id: CURSOR_ID }, { $max: { slot: to } }, { upsert: true });
    return acted;
  }

  private async fire(doc: RequestRecord): Promise<boolean> {
    const { requests, logger } = this.deps;
    const fired = transition(lifecycleView(doc), { type: 'timer-fired' }, requests.now(), requests.policy);
    if (!fired.changed) return false; // due later in this slot
    const log = logger.child({ requestId: String(doc._id), timer: doc.timer?.kind });
    try {
      await this.act(doc, fired.effect);
      return true;
    } catch (error) {
      // Re-armed for later, never dropped: the cursor moves on past this slot.
      log.warn({ err: error }, 'timer action failed; trying again later');
      const kind = doc.timer?.kind ?? 'publish';
      const retryAt = new Date(requests.now().getTime() + requests.policy.publishGraceMs);
      await requests.rearm(doc, { kind, dueAt: retryAt });
      return false;
    }
  }

  private async act(doc: RequestRecord, effect: Effect | null): Promise<void> {
    const { requests, models, dispatcher, store, webhooks, logger } = this.deps;
    const firedEvent = { type: 'timer-fired' } as const;
    switch (effect?.kind) {
      case 'dispatch': {
        // The timer's next step (a retry) is written first, so a dispatch that fails or a
        // process that dies mid-dispatch is retried.
        const armed = await requests.apply(doc, firedEvent);
        // Another replica's sweeper moved it first (its dispatch, its outcome).
        if (!armed.transition.changed) return;
        await dispatcher.redispatch(armed.doc, effect.seq);
        return;
      }
      case 'fail': {
        const armed = await requests.apply(doc, firedEvent);
        if (!armed.transition.changed) return;
        const { recorded } = await requests.recordOutcome(armed.doc, {
          state: 'failed',
          errors: [{ code: effect.code, message: effect.message }],
          modelId: doc.model,
          worker: 'lifecycle',
          source: effect.code === 'DELIVERY_LIMIT' ? 'dead-letter' : 'sweeper',
        });
        logger.warn({ requestId: String(doc._id), code: effect.code, recorded }, 'request failed by its lifecycle');
        // Its webhook timer is due now: its first attempt need not wait for the next pass.
        if (doc.webhook) webhooks.hint(String(doc._id));
        return;
      }
      case 'deliver-webhook':
        // Claimed there, sent in the background: a slow receiver never holds up the sweep.
        await webhooks.fire(doc);
        return;
      case 'purge-tokens': {
        if (doc.idempotency_key) {
          await models.IdempotencyRecord.deleteOne({ _id: idempotencyRecordId(doc.submitter, doc.idempotency_key) });
        }
        for (let seq = 2; seq <= doc.dispatches; seq++) {
          await models.DispatchClaim.deleteOne({ _id: dispatchClaimId(doc._id, seq) });
        }
        await requests.apply(doc, firedEvent, { set: { tokens: [] } });
        return;
      }
      case 'purge-image':
        await store.delete(doc.image.key);
        await requests.apply(doc, firedEvent, { set: { 'image.purged_at': requests.now() } });
        return;
      case undefined:
        await requests.apply(doc, firedEvent);
        return;
    }
  }
}
