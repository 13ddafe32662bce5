import { Schema, type InferSchemaType } from 'mongoose';

export const REQUEST_STATES = ['queued', 'assigned', 'classified', 'failed'] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

export const classificationRequestSchema = new Schema(
  {
    model: { type: Schema.Types.ObjectId, required: true },
    dataset: { type: Schema.Types.ObjectId, required: true },
    /** Copied from the dataset so "who may see this request" is one indexed query. */
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
        },
        { _id: false },
      ),
      required: true,
    },
    /**
     * A cache of the outcome for listing and filtering. The ClassificationResult, unique per
     * request, is the truth: whoever reads a request with a result takes the result's state.
     */
    state: { type: String, required: true, enum: REQUEST_STATES, default: 'queued' },
    priority: { type: Number, required: true, default: 0, min: 0, max: 9 },
    /** Always set (the request id when the client gave none), so a plain unique index works. */
    idempotency_key: { type: String, required: true, maxlength: 200 },
    correlation_id: { type: String, required: true },
    /** Jobs published for this request so far; each has its own dispatch token. */
    dispatch_count: { type: Number, required: true, default: 0 },
    /** When the last dispatch began (set before publishing, so a crash mid-dispatch is seen). */
    dispatched_at: { type: Date, default: null },
    /** When the broker confirmed the last dispatch's job. */
    published_at: { type: Date, default: null },
    /** When a worker reported it had taken the job. */
    assigned_on: { type: Date, default: null },
    worker: { type: String, default: null },
    /** Deliveries reported by workers (a crash mid-job shows up as a second attempt). */
    attempts: { type: Number, required: true, default: 0 },
    completed_at: { type: Date, default: null },
    /** The result's top label and score, cached with the state so listings need no join. */
    label: { type: String, default: null },
    score: { type: Number, default: null },
  },
  { timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' }, collection: 'classification_requests' },
);
classificationRequestSchema.index({ submitter: 1, idempotency_key: 1 }, { unique: true });
classificationRequestSchema.index({ submitter: 1, _id: -1 });
classificationRequestSchema.index({ dataset_owner: 1, _id: -1 });
classificationRequestSchema.index({ state: 1, dispatched_at: 1 });
classificationRequestSchema.index({ state: 1, published_at: 1, created_at: 1 });
export type ClassificationRequest = InferSchemaType<typeof classificationRequestSchema>;
