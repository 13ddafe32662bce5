import { Schema, type InferSchemaType } from 'mongoose';
import { LIFECYCLE_STATES, TIMER_KINDS, WEBHOOK_STATUSES } from '@cxr/request-lifecycle';

/**
 * A classification request and its lifecycle bookkeeping. Every read and write on the request
 * path addresses one request by `_id`; the only other look-up is the timer slot (`due_slot`),
 * an equality on the few requests whose timers fall due in one slot. Nothing scans history.
 */
export const classificationRequestSchema = new Schema(
  {
    model: { type: Schema.Types.ObjectId, required: true },
    dataset: { type: Schema.Types.ObjectId, required: true },
    /** Copied from the dataset so "who may see this request" needs no join. */
    dataset_owner: { type: Schema.Types.ObjectId, required: true },
    submitter: { type: Schema.Types.ObjectId, required: true },
    image: {
      type: new Schema(
        {
          key: { type: String, required: true },
          sha256: { type: String, required: true },
          size: { type: Number, required: true },
          format: { type: String, required: true, enum: ['png', 'jpeg'] },
          width: { type: Number, required: true },
          height: { type: Number, required: true },
          /** Set when retention deleted the blob. */
          purged_at: { type: Date, default: null },
        },
        { _id: false },
      ),
      required: true,
    },
    /**
     * The lifecycle state (see @cxr/request-lifecycle). For ended requests it caches the outcome
     * for listings; the ClassificationResult, unique per request, is the truth.
     */
    state: { type: String, required: true, enum: LIFECYCLE_STATES },
    priority: { type: Number, required: true, default: 0, min: 0, max: 9 },
    /** The client's Idempotency-Key, if it sent one; its IdempotencyRecord holds the claim. */
    idempotency_key: { type: String, default: null, maxlength: 200 },
    correlation_id: { type: String, required: true },
    /** Dispatches begun; the latest one's number. */
    dispatches: { type: Number, required: true, default: 1 },
    /** Dispatch tokens (hashes only), one per dispatch; removed by retention after the request ends. */
    tokens: {
      type: [
        {
          _id: false,
          hash: { type: String, required: true },
          seq: { type: Number, required: true },
          expires_at: { type: Date, required: true },
        },
      ],
      default: [],
    },
    /** Leases that lapsed (a worker started a job and did not finish it in time). */
    lapses: { type: Number, required: true, default: 0 },
    /** Deliveries reported by workers (a crash mid-job shows up as a second attempt). */
    attempts: { type: Number, required: true, default: 0 },
    /** The one pending timer of the request, and its slot (what the sweeper looks up). */
    timer: {
      type: new Schema(
        { kind: { type: String, required: true, enum: TIMER_KINDS }, due_at: { type: Date, required: true } },
        { _id: false },
      ),
      default: null,
    },
    due_slot: { type: Number, default: null },
    /** When the latest dispatch began, and when the broker confirmed a job. */
    dispatched_at: { type: Date, default: null },
    published_at: { type: Date, default: null },
    /** When a worker reported it had taken the job. */
    assigned_on: { type: Date, default: null },
    worker: { type: String, default: null },
    completed_at: { type: Date, default: null },
    /**
     * The callback_url the submitter gave, and its delivery: status (pending until delivered or
     * given up), attempts made, and the latest WEBHOOK_ATTEMPTS_KEPT of them. Null without one.
     */
    webhook: {
      type: new Schema(
        {
          url: { type: String, required: true, maxlength: 2048 },
          status: { type: String, required: true, enum: WEBHOOK_STATUSES },
          attempt_count: { type: Number, required: true, default: 0 },
          attempts: {
            type: [
              {
                _id: false,
                at: { type: Date, required: true },
                status_code: { type: Number, default: null },
                error: { type: String, default: null },
                duration_ms: { type: Number, required: true },
              },
            ],
            default: [],
          },
        },
        { _id: false },
      ),
      default: null,
    },
    /** The result's top label and score, cached with the state so listings need no join. */
    label: { type: String, default: null },
    score: { type: Number, default: null },
    created_at: { type: Date, required: true, default: () => new Date() },
  },
  { collection: 'classification_requests' },
);
classificationRequestSchema.index({ submitter: 1, _id: -1 });
classificationRequestSchema.index({ dataset_owner: 1, _id: -1 });
classificationRequestSchema.index({ due_slot: 1 });
export type ClassificationRequest = InferSchemaType<typeof classificationRequestSchema>;
