import { recordOutcome, syncRequestWithResult, type Database } from '@cxr/db';
import type { Logger } from '@cxr/logging';
import type { Types } from 'mongoose';
import type { Dispatcher } from './dispatch';

export interface SweeperOptions {
  intervalMs: number;
  /** A queued request not yet published after this long is published. */
  unpublishedGraceMs: number;
  /** A dispatched request without an outcome after this long is dispatched again. */
  redispatchAfterMs: number;
  maxDispatches: number;
}

/**
 * Finds requests that a process death left behind (never published, or published and never
 * finished) and dispatches them again, or fails them with a reason once they have used up
 * their dispatches. Safe to run in every gateway replica: each dispatch names the count it saw,
 * so replicas acting on the same request race on the unique (request, seq) index.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    private readonly options: SweeperOptions,
  ) {}

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      this.running = this.sweep()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.warn({ err: error }, 'sweep failed; will retry'))
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

  /** One pass; returns how many requests it acted on. */
  async sweep(now = new Date()): Promise<number> {
    const { ClassificationRequest } = this.db.models;
    const open = { $in: ['queued', 'assigned'] };
    // Oldest first, so requests that cannot move do not hide the others behind the limit.
    const unpublished = await ClassificationRequest.find({
      state: open,
      published_at: null,
      created_at: { $lt: new Date(now.getTime() - this.options.unpublishedGraceMs) },
    })
      .sort({ created_at: 1 })
      .limit(100)
      .lean();
    const stale = await ClassificationRequest.find({
      state: open,
      dispatched_at: { $lt: new Date(now.getTime() - this.options.redispatchAfterMs) },
    })
      .sort({ dispatched_at: 1 })
      .limit(100)
      .lean();
    let acted = 0;
    const seen = new Set<string>();
    for (const request of [...unpublished, ...stale]) {
      if (seen.has(String(request._id))) continue;
      seen.add(String(request._id));
      // A dispatch made by the route or another replica moments ago is not stale.
      const lastAttempt = request.dispatched_at?.getTime() ?? 0;
      if (!request.published_at && now.getTime() - lastAttempt < this.options.unpublishedGraceMs) continue;
      try {
        acted += (await this.settle(request._id, request.dispatch_count, request.model)) ? 1 : 0;
      } catch (error) {
        this.logger.warn({ err: error, requestId: String(request._id) }, 'could not sweep request');
      }
    }
    return acted;
  }

  private async settle(requestId: Types.ObjectId, dispatchCount: number, modelId: Types.ObjectId): Promise<boolean> {
    // The outcome may be recorded already, by a process that died before updating the request.
    if (await syncRequestWithResult(this.db.models, requestId)) return true;
    if (dispatchCount >= this.options.maxDispatches) {
      await recordOutcome(this.db.models, {
        requestId,
        state: 'failed',
        errors: [
          {
            code: 'NOT_COMPLETED',
            message: `no worker completed this request after ${dispatchCount} dispatches`,
          },
        ],
        modelId,
        worker: 'sweeper',
        source: 'sweeper',
      });
      this.logger.warn({ requestId: String(requestId) }, 'request failed after its last dispatch');
      return true;
    }
    const dispatched = await this.dispatcher.dispatch(requestId, dispatchCount);
    if (dispatched) this.logger.info({ requestId: String(requestId), seq: dispatchCount + 1 }, 'request re-dispatched');
    return dispatched;
  }
}
