import { Schema, type InferSchemaType } from 'mongoose';

export const datasetSchema = new Schema(
  {
    owner: { type: Schema.Types.ObjectId, required: true },
    name: { type: String, required: true, maxlength: 64 },
    display_name: { type: String, required: true, maxlength: 200 },
    description: { type: String, default: '', maxlength: 5000 },
    /** Minimum width and height of a submitted image, in pixels. */
    img_width: { type: Number, required: true, min: 1 },
    img_height: { type: Number, required: true, min: 1 },
    /** Submitted images must have the ratio img_width:img_height (within RATIO_TOLERANCE). */
    maintain_ratio: { type: Boolean, required: true, default: false },
    /** `public` datasets can be read and classified against by every user. */
    visibility: { type: String, required: true, enum: ['private', 'public'], default: 'private' },
    default_model: { type: Schema.Types.ObjectId, default: null },
  },
  { timestamps: { createdAt: 'created_at', updatedAt: 'updated_at' }, collection: 'datasets' },
);
datasetSchema.index({ owner: 1, name: 1 }, { unique: true });
export type Dataset = InferSchemaType<typeof datasetSchema>;
