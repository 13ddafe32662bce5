import { Schema, type InferSchemaType } from 'mongoose';

/** An uploaded ONNX classifier ("Model" in the design; renamed to keep clear of mongoose's Model). */
export const classifierModelSchema = new Schema(
  {
    dataset: { type: Schema.Types.ObjectId, required: true },
    dataset_owner: { type: Schema.Types.ObjectId, required: true },
    uploaded_by: { type: Schema.Types.ObjectId, required: true },
    name: { type: String, required: true, maxlength: 100 },
    /** 1, 2, 3… per dataset; the unique index arbitrates concurrent uploads. */
    version: { type: Number, required: true, min: 1 },
    blob: {
      type: new Schema(
        {
          key: { type: String, required: true },
          size: { type: Number, required: true },
          sha256: { type: String, required: true },
        },
        { _id: false },
      ),
      required: true,
    },
    labels: { type: [String], required: true },
    input_spec: { type: Schema.Types.Mixed, required: true },
    input_name: { type: String, required: true },
    output_name: { type: String, required: true },
    status: { type: String, required: true, enum: ['active', 'retired'], default: 'active' },
    uploaded_on: { type: Date, required: true, default: () => new Date() },
    retired_on: { type: Date, default: null },
  },
  { collection: 'models' },
);
classifierModelSchema.index({ dataset: 1, version: 1 }, { unique: true });
export type ClassifierModel = InferSchemaType<typeof classifierModelSchema>;
