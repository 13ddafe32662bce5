import { recordOutcome, type Database } from '@cxr/db';
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
 * their dispatches. Safe to run in every gateway replica: dispatches race on a unique index.
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
    const unpublished = await ClassificationRequest.find({
      state: 'queued',
      dispatched_at: null,
      created_at: { $lt: new Date(now.getTime() - this.options.unpublishedGraceMs) },
    })
      .limit(100)
      .lean();
    const stale = await ClassificationRequest.find({
      state: { $in: ['queued', 'assigned'] },
      dispatched_at: { $lt: new Date(now.getTime() - this.options.redispatchAfterMs) },
    })
      .limit(100)
      .lean();
    let acted = 0;
    for (const request of [...unpublished, ...stale]) {
      try {
        acted += (await this.settle(request._id, request.dispatch_count, request.model)) ? 1 : 0;
      } catch (error) {
        this.logger.warn({ err: error, requestId: String(request._id) }, 'could not sweep request');
      }
    }
    return acted;
  }

  private async settle(requestId: Types.ObjectId, dispatchCount: number, modelId: Types.ObjectId): Promise<boolean> {
    const { ClassificationResult, ClassificationRequest } = this.db.models;
    const result = await ClassificationResult.findById(requestId, { state: 1, completed_on: 1 }).lean();
    if (result) {
      // The outcome was recorded but the process died before updating the request.
      await ClassificationRequest.updateOne(
        { _id: requestId },
        { $set: { state: result.state, completed_at: result.completed_on } },
      );
      return true;
    }
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
    const dispatched = await this.dispatcher.dispatch(requestId);
    if (dispatched) this.logger.info({ requestId: String(requestId), seq: dispatchCount + 1 }, 'request re-dispatched');
    return dispatched;
  }
}
