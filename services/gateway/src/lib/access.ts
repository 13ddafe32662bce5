import type { Database } from '@cxr/db';
import { Types } from 'mongoose';
import { forbidden, notFound } from '../errors';
import { TtlCache } from './ttl-cache';

type DatasetRecord = NonNullable<Awaited<ReturnType<typeof readDataset>>>;
type ModelRecord = NonNullable<Awaited<ReturnType<typeof readModel>>>;

const readDataset = (db: Database, id: string) => db.models.Dataset.findById(new Types.ObjectId(id)).lean();
const readModel = (db: Database, id: string) => db.models.ClassifierModel.findById(new Types.ObjectId(id)).lean();

/**
 * Datasets and models as submissions read them, each kept for `ttlMs`: with the cache warm a
 * submission reads neither. A change through this gateway clears it before it is answered; a
 * change through another replica shows here within `ttlMs` (0 reads them every time).
 */
export class MetadataCache {
  private readonly datasets: TtlCache<DatasetRecord | null>;
  private readonly models: TtlCache<ModelRecord | null>;

  constructor(
    private readonly db: Database,
    ttlMs: number,
  ) {
    this.datasets = new TtlCache(ttlMs, 10_000);
    this.models = new TtlCache(ttlMs, 10_000);
  }

  dataset(id: string): Promise<DatasetRecord | null> {
    // A missing one is kept too.
    return this.datasets.load(id, () => readDataset(this.db, id));
  }

  model(id: string): Promise<ModelRecord | null> {
    return this.models.load(id, () => readModel(this.db, id));
  }

  clear(): void {
    this.datasets.clear();
    this.models.clear();
  }
}

/** Where loadDataset and loadModel read: the database, or a submission's cache of it. */
type Source = Database | MetadataCache;

/**
 * Loads a dataset the caller may see: its own, or a public one. Someone else's private
 * dataset is "not found", so ids do not reveal what exists. `write` also needs ownership.
 */
export async function loadDataset(from: Source, id: string, userId: Types.ObjectId, mode: 'read' | 'write') {
  const dataset = from instanceof MetadataCache ? await from.dataset(id) : await readDataset(from, id);
  if (!dataset) throw notFound('dataset');
  const isOwner = dataset.owner.equals(userId);
  if (!isOwner && dataset.visibility !== 'public') throw notFound('dataset');
  if (mode === 'write' && !isOwner) throw forbidden("only the dataset's owner can change it or its models");
  return dataset;
}

export async function loadModel(from: Source, id: string, userId: Types.ObjectId, mode: 'read' | 'write') {
  const model = from instanceof MetadataCache ? await from.model(id) : await readModel(from, id);
  if (!model) throw notFound('model');
  try {
    const dataset = await loadDataset(from, String(model.dataset), userId, mode);
    return { model, dataset };
  } catch (error) {
    // A model of a dataset the caller cannot see does not exist for the caller either.
    if (error instanceof Error && 'statusCode' in error && error.statusCode === 404) throw notFound('model');
    throw error;
  }
}
