import { Schema, type InferSchemaType } from 'mongoose';

/**
 * A submitter's Idempotency-Key, claimed before anything is stored. The `_id` is the SHA-256 of
 * submitter and key, so the claim is one insert that the primary key arbitrates, and finding
 * the earlier request is one primary-key read. Deleted by retention with the request's tokens.
 */
export const idempotencyRecordSchema = new Schema(
  {
    _id: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    request: { type: Schema.Types.ObjectId, required: true },
    model: { type: Schema.Types.ObjectId, required: true },
    image_sha256: { type: String, required: true },
    // The submission's callback_url (null: none). Absent on claims made before it was recorded.
    callback_url: { type: String, default: null },
    created_at: { type: Date, required: true },
  },
  { collection: 'idempotency_records' },
);
export type IdempotencyRecord = InferSchemaType<typeof idempotencyRecordSchema>;
