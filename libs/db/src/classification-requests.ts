import { createHash } from 'node:crypto';
import {
  accept,
  isTerminal,
  slotOf,
  transition,
  type LifecycleEvent,
  type LifecyclePolicy,
  type LifecycleView,
  type Timer,
  type Transition,
} from '@cxr/request-lifecycle';
import type { Types } from 'mongoose';
import type { Models } from './database';
import { isDuplicateKeyError } from './database';
import type { ClassificationRequest } from './entities/classification-request';
import type { ClassificationResult } from './entities/classification-result';

export type RequestRecord = ClassificationRequest & { _id: Types.ObjectId };
export type ResultRecord = ClassificationResult & { _id: Types.ObjectId };

export interface Outcome {
  state: 'classified' | 'failed';
  classification?: { label: string; score: number; scores: { label: string; score: number }[] } | undefined;
  errors: { code: string; message: string }[];
  modelId: Types.ObjectId;
  worker: string;
  source: 'worker' | 'dead-letter' | 'sweeper';
  /** The hash of the dispatch token the result came with. */
  dispatchToken?: string | null;
  timings?: Record<string, number>;
}

/** What a new request is stored with, besides its lifecycle bookkeeping. */
export interface NewRequest {
  _id: Types.ObjectId;
  model: Types.ObjectId;
  dataset: Types.ObjectId;
  dataset_owner: Types.ObjectId;
  submitter: Types.ObjectId;
  image: { key: string; sha256: string; size: number; format: 'png' | 'jpeg'; width: number; height: number };
  priority: number;
  idempotency_key: string | null;
  correlation_id: string;
  /** The first dispatch's token (its hash). */
  tokens: { hash: string; seq: number; expires_at: Date }[];
  /** Where the outcome is POSTed when the request ends (checked by the caller); null for none. */
  callback_url: string | null;
}

/** Webhook attempts a request keeps (the latest); `attempt_count` counts them all. */
export const WEBHOOK_ATTEMPTS_KEPT = 10;

/** One webhook attempt: the receiver's status code, or why there was none. */
export interface WebhookAttempt {
  at: Date;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export function lifecycleView(doc: RequestRecord): LifecycleView {
  return {
    state: doc.state,
    dispatches: doc.dispatches,
    lapses: doc.lapses,
    attempts: doc.attempts,
    completedAt: doc.completed_at ?? null,
    timer: doc.timer ? { kind: doc.timer.kind, dueAt: doc.timer.due_at } : null,
    webhook: doc.webhook ? { status: doc.webhook.status, attempts: doc.webhook.attempt_count } : null,
  };
}

/** The fields the lifecycle owns, as stored (a request's webhook, if it has one, by its own fields). */
function lifecycleFields(view: LifecycleView): Record<string, unknown> {
  return {
    ...(view.webhook && { 'webhook.status': view.webhook.status, 'webhook.attempt_count': view.webhook.attempts }),
    state: view.state,
    dispatches: view.dispatches,
    lapses: view.lapses,
    attempts: view.attempts,
    completed_at: view.completedAt,
    timer: view.timer ? { kind: view.timer.kind, due_at: view.timer.dueAt } : null,
    due_slot: view.timer ? slotOf(view.timer.dueAt) : null,
  };
}

/** The record after a `$set` of `set`, whose keys may be paths one level deep ('webhook.status'). */
function withSet(doc: RequestRecord, set: Record<string, unknown>): RequestRecord {
  const next: Record<string, unknown> = { ...doc };
  for (const [path, value] of Object.entries(set)) {
    const [head, field] = path.split('.', 2) as [string, string | undefined];
    next[head] = field === undefined ? value : { ...(next[head] as object), [field]: value };
  }
  return next as RequestRecord;
}

/** The primary key of a submitter's Idempotency-Key record. */
export function idempotencyRecordId(submitter: Types.ObjectId, key: string): string {
  return createHash('sha256').update(`${submitter.toHexString()}\n${key}`, 'utf8').digest('hex');
}

export interface ApplyOptions {
  /** More fields to set with the transition (e.g. who started the job). */
  set?: Record<string, unknown>;
  /** Array fields to append to (e.g. a new dispatch token). */
  push?: Record<string, unknown>;
}

/**
 * The classification requests and their outcomes, persisted through the lifecycle rules. Every
 * read and write addresses one request by `_id`, except `due`, an equality on one timer slot.
 * Writes that move an open request name the state and dispatch count they were computed from,
 * so on MongoDB two writers cannot both move it (the loser re-reads and recomputes). FerretDB
 * v1 does not make that filter-then-write atomic; there the result's primary key still keeps
 * the outcome single, and every open request keeps a timer that brings it back to the rules.
 */
export class ClassificationRequests {
  constructor(
    private readonly models: Models,
    readonly policy: LifecyclePolicy,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  now(): Date {
    return this.clock();
  }

  get(id: Types.ObjectId): Promise<RequestRecord | null> {
    return this.models.ClassificationRequest.findById(id).lean<RequestRecord>().exec();
  }

  result(id: Types.ObjectId): Promise<ResultRecord | null> {
    return this.models.ClassificationResult.findById(id).lean<ResultRecord>().exec();
  }

  /** Requests whose timer falls in `slot` (due or nearly due). */
  due(slot: number): Promise<RequestRecord[]> {
    return this.models.ClassificationRequest.find({ due_slot: slot }).lean<RequestRecord[]>().exec();
  }

  /** Stores a new request with its first dispatch begun (its token is in `fields.tokens`). */
  async create(fields: NewRequest): Promise<RequestRecord> {
    const now = this.now();
    const { callback_url: url, ...rest } = fields;
    const view = accept(now, this.policy, { webhook: url !== null });
    const created = await this.models.ClassificationRequest.create({
      ...rest,
      ...lifecycleFields({ ...view, webhook: null }),
      webhook: url === null ? null : { url, status: 'pending', attempt_count: 0, attempts: [] },
      dispatched_at: now,
    });
    return created.toObject();
  }

  /**
   * Applies an event to a request and writes what changed. Returns the transition (for its
   * effect) and the record as written.
   */
  async apply(
    doc: RequestRecord,
    event: LifecycleEvent,
    options: ApplyOptions = {},
  ): Promise<{ transition: Transition; doc: RequestRecord }> {
    let current = doc;
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.now();
      const result = transition(lifecycleView(current), event, now, this.policy);
      if (!result.changed) return { transition: result, doc: current };
      const set: Record<string, unknown> = { ...lifecycleFields(result.view), ...options.set };
      const update = options.push ? { $set: set, $push: options.push } : { $set: set };
      // An outcome is final whatever state the record had; anything else moves only the state it was computed from.
      // A `started` gives the same result from any open state, so it only needs the request open.
      const filter: Record<string, unknown> =
        event.type === 'finished' || isTerminal(current.state)
          ? { _id: current._id }
          : {
              _id: current._id,
              dispatches: current.dispatches,
              state: event.type === 'started' ? { $in: ['accepted', 'queued', 'assigned'] } : current.state,
            };
      // A fired timer is claimed: of the replicas that found it due, the one whose write still
      // finds it as it was acts (the others re-read a timer that is no longer due).
      if (event.type === 'timer-fired' && current.timer) {
        filter['timer.kind'] = current.timer.kind;
        filter['timer.due_at'] = current.timer.due_at;
      }
      const { matchedCount } = await this.models.ClassificationRequest.updateOne(filter, update);
      if (matchedCount === 1) return { transition: result, doc: withSet(current, set) };
      const fresh = await this.get(current._id);
      if (!fresh) throw new Error(`request ${String(current._id)} disappeared`);
      current = fresh;
    }
    throw new Error(`request ${String(doc._id)} kept changing under event ${event.type}`);
  }

  /**
   * Records a webhook attempt under the request's claim: the lifecycle decides what follows (a
   * retry, or retention once delivered or given up); the attempt joins the latest kept.
   */
  async recordWebhookAttempt(
    doc: RequestRecord,
    attempt: WebhookAttempt,
    outcome: 'delivered' | 'failed' | 'refused',
    jitter: number,
  ): Promise<{ transition: Transition; doc: RequestRecord }> {
    const kept = [...(doc.webhook?.attempts ?? []), attempt].slice(-WEBHOOK_ATTEMPTS_KEPT);
    return this.apply(doc, { type: 'webhook-attempted', outcome, jitter }, { set: { 'webhook.attempts': kept } });
  }

  /** Sets the request's timer again after its action failed, leaving the rest as it is. */
  async rearm(doc: RequestRecord, timer: Timer): Promise<void> {
    await this.models.ClassificationRequest.updateOne(
      { _id: doc._id },
      { $set: { timer: { kind: timer.kind, due_at: timer.dueAt }, due_slot: slotOf(timer.dueAt) } },
    );
  }

  /**
   * Records the one outcome of a request. The result's primary key (the request id) decides:
   * the first writer wins, later ones change nothing (`recorded: false`). The request is then
   * moved to whichever outcome won, so a lost race or a retry after a crash between the two
   * writes still leaves it consistent.
   */
  async recordOutcome(doc: RequestRecord, outcome: Outcome): Promise<{ recorded: boolean; result: ResultRecord }> {
    const completedOn = this.now();
    const fields = {
      _id: doc._id,
      request: doc._id,
      state: outcome.state,
      classification: outcome.classification ?? null,
      errors: outcome.errors,
      model: outcome.modelId,
      worker: outcome.worker,
      source: outcome.source,
      dispatch_token: outcome.dispatchToken ?? null,
      timings: outcome.timings ?? {},
      completed_on: completedOn,
    };
    let recorded = true;
    let result = fields as unknown as ResultRecord;
    try {
      await this.models.ClassificationResult.create(fields);
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      recorded = false;
      const winner = await this.result(doc._id);
      if (!winner) throw error;
      result = winner;
    }
    await this.settle(doc, result);
    return { recorded, result };
  }

  /**
   * Moves a request whose outcome is recorded to that outcome, caching label and score for
   * listings. Used after recording, and to repair a request whose writer died between the
   * result's insert and this update.
   */
  async settle(doc: RequestRecord, result: ResultRecord): Promise<RequestRecord> {
    if (isTerminal(doc.state)) return doc;
    const { doc: settled } = await this.apply(
      { ...doc, completed_at: result.completed_on },
      { type: 'finished', outcome: result.state },
      {
        set: {
          completed_at: result.completed_on,
          label: result.classification?.label ?? null,
          score: result.classification?.score ?? null,
        },
      },
    );
    return settled;
  }
}
