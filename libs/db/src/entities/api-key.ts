import { Schema, type InferSchemaType } from 'mongoose';

/**
 * An API key is `cxr_<key_id>_<secret>`. The key_id finds the record; only the SHA-256 of
 * the secret is stored, so a database leak does not leak usable keys.
 */
export const apiKeySchema = new Schema(
  {
    user: { type: Schema.Types.ObjectId, required: true, index: true },
    key_id: { type: String, required: true, unique: true },
    secret_hash: { type: String, required: true },
    name: { type: String, required: true, maxlength: 100 },
    last_used_at: { type: Date, default: null },
    revoked_at: { type: Date, default: null },
  },
  { timestamps: { createdAt: 'created_at', updatedAt: false }, collection: 'api_keys' },
);
export type ApiKey = InferSchemaType<typeof apiKeySchema>;
