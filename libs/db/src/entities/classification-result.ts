import { Schema, type InferSchemaType } from 'mongoose';

/** The one outcome of a request. The unique index on `request` makes recording idempotent. */
export const classificationResultSchema = new Schema(
  {
    request: { type: Schema.Types.ObjectId, required: true, unique: true },
    state: { type: String, required: true, enum: ['classified', 'failed'] },
    classification: {
      type: new Schema(
        {
          label: { type: String, required: true },
          score: { type: Number, required: true },
          scores: { type: [{ _id: false, label: String, score: Number }], required: true },
        },
        { _id: false },
      ),
      default: null,
    },
    errors: { type: [{ _id: false, code: String, message: String }], default: [] },
    model: { type: Schema.Types.ObjectId, required: true },
    worker: { type: String, required: true },
    /** Where the outcome came from: a worker's result, a dead-lettered job, or the sweeper. */
    source: { type: String, required: true, enum: ['worker', 'dead-letter', 'sweeper'] },
    dispatch_token: { type: Schema.Types.ObjectId, default: null },
    timings: { type: Schema.Types.Mixed, default: {} },
    completed_on: { type: Date, required: true },
  },
  // `errors` is a field of ours, not mongoose's validation errors.
  { collection: 'classification_results', suppressReservedKeysWarning: true },
);
export type ClassificationResult = InferSchemaType<typeof classificationResultSchema>;
