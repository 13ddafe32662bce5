import { Schema, type InferSchemaType } from 'mongoose';

/**
 * An API key is `cxr_<key id>_<secret>`. The key id is the record's `_id` (a primary-key
 * lookup on every request); only the SHA-256 of the secret is stored, so a database leak does
 * not leak usable keys.
 */
export const apiKeySchema = new Schema(
  {
    _id: { type: String, required: true, match: /^[0-9a-f]{16}$/ },
    user: { type: Schema.Types.ObjectId, required: true, index: true },
    secret_hash: { type: String, required: true },
    name: { type: String, required: true, maxlength: 100 },
    last_used_at: { type: Date, default: null },
    revoked_at: { type: Date, default: null },
  },
  { timestamps: { createdAt: 'created_at', updatedAt: false }, collection: 'api_keys' },
);
export type ApiKey = InferSchemaType<typeof apiKeySchema>;
