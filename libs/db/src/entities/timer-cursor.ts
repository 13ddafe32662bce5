import { Schema, type InferSchemaType } from 'mongoose';

/** How far the sweepers have looked through the timer slots: every slot before `slot` is done. */
export const timerCursorSchema = new Schema(
  {
    _id: { type: String, required: true },
    slot: { type: Number, required: true },
  },
  { collection: 'timer_cursors' },
);
export type TimerCursor = InferSchemaType<typeof timerCursorSchema>;
