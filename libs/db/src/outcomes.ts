import type { Types } from 'mongoose';
import type { Models } from './database';
import { isDuplicateKeyError } from './database';

export interface Outcome {
  requestId: Types.ObjectId;
  state: 'classified' | 'failed';
  classification?: { label: string; score: number; scores: { label: string; score: number }[] } | undefined;
  errors: { code: string; message: string }[];
  modelId: Types.ObjectId;
  worker: string;
  source: 'worker' | 'dead-letter' | 'sweeper';
  /** The dispatch token (its hash) the result came with. */
  dispatchTokenId?: string | null;
  timings?: Record<string, number>;
}

/**
 * Records the one outcome of a request. The unique index on the result's request decides:
 * the first writer wins, later ones change nothing (`recorded: false`). The request's state
 * is then set from whichever result won, so a writer that lost the race, or a retry after a
 * crash between the two writes, still leaves the request consistent.
 */
export async function recordOutcome(
  models: Models,
  outcome: Outcome,
): Promise<{ recorded: boolean; state: 'classified' | 'failed' }> {
  const { ClassificationResult } = models;
  let recorded = true;
  try {
    await ClassificationResult.create({
      _id: outcome.requestId,
      request: outcome.requestId,
      state: outcome.state,
      classification: outcome.classification ?? null,
      errors: outcome.errors,
      model: outcome.modelId,
      worker: outcome.worker,
      source: outcome.source,
      dispatch_token: outcome.dispatchTokenId ?? null,
      timings: outcome.timings ?? {},
      completed_on: new Date(),
    });
  } catch (error) {
    if (!isDuplicateKeyError(error)) throw error;
    recorded = false;
  }
  const state = await syncRequestWithResult(models, outcome.requestId);
  return { recorded, state: state ?? outcome.state };
}

/**
 * Copies a request's recorded outcome (state, time, top label and score) onto the request,
 * which caches it for listings. Returns the outcome's state, or null when there is none yet.
 * Used after recording, and to repair a request whose process died between the two writes.
 */
export async function syncRequestWithResult(
  models: Models,
  requestId: Types.ObjectId,
): Promise<'classified' | 'failed' | null> {
  const winner = await models.ClassificationResult.findById(requestId, {
    state: 1,
    completed_on: 1,
    classification: 1,
  }).lean();
  if (!winner) return null;
  const state = winner.state;
  await models.ClassificationRequest.updateOne(
    { _id: requestId },
    {
      $set: {
        state,
        completed_at: winner.completed_on,
        label: winner.classification?.label ?? null,
        score: winner.classification?.score ?? null,
      },
    },
  );
  return state;
}
