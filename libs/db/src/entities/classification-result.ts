import { Schema, type InferSchemaType } from 'mongoose';

/**
 * The one outcome of a request. Its `_id` is the request's id: the primary key makes recording
 * idempotent (a second insert is a duplicate key), and lookups by request are primary-key
 * lookups, which FerretDB serves without scanning (it scans for most other filters).
 */
export const classificationResultSchema = new Schema(
  {
    _id: { type: Schema.Types.ObjectId, required: true },
    /** Equal to `_id`; kept so the record reads on its own. */
    request: { type: Schema.Types.ObjectId, required: true },
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
    /** Hash of the dispatch token the result came with (the DispatchToken's id). */
    dispatch_token: { type: String, default: null },
    timings: { type: Schema.Types.Mixed, default: {} },
    completed_on: { type: Date, required: true },
  },
  // `errors` is a field of ours, not mongoose's validation errors.
  { collection: 'classification_results', suppressReservedKeysWarning: true },
);
export type ClassificationResult = InferSchemaType<typeof classificationResultSchema>;
