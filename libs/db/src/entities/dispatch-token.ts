import { Schema, type InferSchemaType } from 'mongoose';

/**
 * Issued each time a request's job is published. A result is recorded only with the right,
 * unexpired, unused token of its request. `seq` numbers the dispatches of one request: the
 * unique (request, seq) index lets concurrent sweepers race to re-dispatch and only one win.
 * The `_id` is the SHA-256 of the token, so checking a presented token is a primary-key lookup.
 */
export const dispatchTokenSchema = new Schema(
  {
    _id: { type: String, required: true, match: /^[0-9a-f]{64}$/ },
    request: { type: Schema.Types.ObjectId, required: true },
    seq: { type: Number, required: true, min: 1 },
    issued_at: { type: Date, required: true },
    expires_at: { type: Date, required: true },
    used_at: { type: Date, default: null },
  },
  { collection: 'dispatch_tokens' },
);
dispatchTokenSchema.index({ request: 1, seq: 1 }, { unique: true });
export type DispatchToken = InferSchemaType<typeof dispatchTokenSchema>;
