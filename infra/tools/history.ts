// Fills the database with finished classification requests, as months of use would leave them:
// what `npm run bench -- --stored N` measures against. Each request has its result; finished
// ones carry their retention timer (tokens already purged, the image's purge still ahead),
// spread over the retention window like real history.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Types, type Database } from '@cxr/db';
import { slotOf } from '@cxr/request-lifecycle';

const LABELS = ['dark', 'bright', 'striped'];
const DAY_MS = 86_400_000;

export interface HistoryTarget {
  datasetId: Types.ObjectId;
  ownerId: Types.ObjectId;
  modelId: Types.ObjectId;
}

/** Counts the stored requests (a bench tool's one-off count, not a request path). */
export async function storedRequests(db: Database): Promise<number> {
  return db.models.ClassificationRequest.estimatedDocumentCount();
}

/** Inserts finished requests and their results until `target` requests are stored; returns how many it added. */
export async function fillHistory(
  db: Database,
  on: HistoryTarget,
  target: number,
  progress: (done: number) => void = () => undefined,
): Promise<number> {
  const { ClassificationRequest, ClassificationResult } = db.models;
  const have = await storedRequests(db);
  const want = Math.max(0, target - have);
  const now = Date.now();
  for (let done = 0; done < want;) {
    const n = Math.min(1000, want - done);
    const requests = [];
    const results = [];
    for (let i = 0; i < n; i++) {
      // Ended at some time in the last 30 days; its image's purge 30 days after that.
      const completedAt = new Date(now - Math.floor(Math.random() * 30 * DAY_MS));
      const createdAt = new Date(completedAt.getTime() - 150);
      // Dated like a request of that time (listings sort by id), unique like any other.
      const id = new Types.ObjectId(
        Math.floor(createdAt.getTime() / 1000)
          .toString(16)
          .padStart(8, '0') + randomBytes(8).toString('hex'),
      );
      const label = LABELS[(done + i) % LABELS.length]!;
      const purgeAt = new Date(completedAt.getTime() + 30 * DAY_MS);
      const sha256 = createHash('sha256').update(String(id)).digest('hex');
      requests.push({
        _id: id,
        model: on.modelId,
        dataset: on.datasetId,
        dataset_owner: on.ownerId,
        submitter: on.ownerId,
        image: {
          key: `images/${String(on.datasetId)}/${String(id)}.png`,
          sha256,
          size: 180_000,
          format: 'png',
          width: 512,
          height: 512,
          purged_at: null,
        },
        state: 'classified',
        priority: 0,
        idempotency_key: null,
        correlation_id: randomUUID(),
        dispatches: 1,
        tokens: [],
        lapses: 0,
        attempts: 1,
        timer: { kind: 'purge-image', due_at: purgeAt },
        due_slot: slotOf(purgeAt),
        dispatched_at: createdAt,
        published_at: createdAt,
        assigned_on: createdAt,
        worker: 'history',
        completed_at: completedAt,
        label,
        score: 0.97,
        created_at: createdAt,
      });
      results.push({
        _id: id,
        request: id,
        state: 'classified',
        classification: {
          label,
          score: 0.97,
          scores: LABELS.map((l) => ({ label: l, score: l === label ? 0.97 : 0.015 })),
        },
        errors: [],
        model: on.modelId,
        worker: 'history',
        source: 'worker',
        dispatch_token: sha256,
        timings: { totalMs: 40 },
        completed_on: completedAt,
      });
    }
    await ClassificationRequest.collection.insertMany(requests, { ordered: false });
    await ClassificationResult.collection.insertMany(results, { ordered: false });
    done += n;
    progress(done);
  }
  return want;
}
