import type { Database } from '@cxr/db';
import { Types } from 'mongoose';
import { forbidden, notFound } from '../errors';

/**
 * Loads a dataset the caller may see: its own, or a public one. Someone else's private
 * dataset is "not found", so ids do not reveal what exists. `write` also needs ownership.
 */
export async function loadDataset(db: Database, id: string, userId: Types.ObjectId, mode: 'read' | 'write') {
  const dataset = await db.models.Dataset.findById(new Types.ObjectId(id)).lean();
  if (!dataset) throw notFound('dataset');
  const isOwner = dataset.owner.equals(userId);
  if (!isOwner && dataset.visibility !== 'public') throw notFound('dataset');
  if (mode === 'write' && !isOwner) throw forbidden("only the dataset's owner can change it or its models");
  return dataset;
}

export async function loadModel(db: Database, id: string, userId: Types.ObjectId, mode: 'read' | 'write') {
  const model = await db.models.ClassifierModel.findById(new Types.ObjectId(id)).lean();
  if (!model) throw notFound('model');
  try {
    const dataset = await loadDataset(db, String(model.dataset), userId, mode);
    return { model, dataset };
  } catch (error) {
    // A model of a dataset the caller cannot see does not exist for the caller either.
    if (error instanceof Error && 'statusCode' in error && error.statusCode === 404) throw notFound('model');
    throw error;
  }
}
