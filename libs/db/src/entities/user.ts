import { Schema, type InferSchemaType } from 'mongoose';

/** A person or system using the API. The username may change; everything refers to the id. */
export const userSchema = new Schema(
  {
    username: { type: String, required: true, unique: true, minlength: 3, maxlength: 64 },
    is_admin: { type: Boolean, required: true, default: false },
  },
  { timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' }, collection: 'users' },
);
export type User = InferSchemaType<typeof userSchema>;
