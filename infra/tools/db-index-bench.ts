// Point-read latency on FerretDB at 100k documents, to see whether reads use an index: run it
// once with the index keeper off and once with it on (see the README, "Indexes on PostgreSQL").
//   npx tsx infra/tools/db-index-bench.ts [--uri mongodb://127.0.0.1:27017/] [--db cxrbench]
//     [--docs 100000] [--n 100] [--fresh]
// Fills <db>.classification_requests (ObjectId ids, shaped and indexed like the app's) and
// <db>.dispatch_tokens (string ids) up to --docs each, unless they are already that full, then
// times each operation --n times, one at a time, and prints what FerretDB's explain says.
// The database is the benchmark's own: --fresh drops it first. Nothing here asserts a target.
import { createHash } from 'node:crypto';
import { MongoClient, ObjectId, type Collection, type Db, type Document } from 'mongodb';
import { percentile } from './measure';

function opt(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const uri = opt('uri', process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/');
const dbName = opt('db', 'cxrbench');
const docs = Number(opt('docs', '100000'));
const n = Number(opt('n', '100'));

// Deterministic data: doc i is the same on every run.
const owners = Array.from({ length: 50 }, (_, i) => ObjectId.createFromTime(1_700_000_000 + i));
const datasets = Array.from({ length: 100 }, (_, i) => ObjectId.createFromTime(1_700_100_000 + i));
const models = Array.from({ length: 5 }, (_, i) => ObjectId.createFromTime(1_700_200_000 + i));
const requestId = (i: number) => ObjectId.createFromHexString((0x10000000 + i).toString(16).padStart(24, '0'));
const tokenId = (i: number) => createHash('sha256').update(`token-${i}`).digest('hex');
const FAILED_EVERY = 1000; // 0.1 % of requests are 'failed': a filter that few documents match

function requestDoc(i: number): Document {
  const created = new Date(Date.UTC(2026, 0, 1) + i * 30_000);
  const state = i % FAILED_EVERY === 7 ? 'failed' : i % 20 === 0 ? 'queued' : 'classified';
  return {
    _id: requestId(i),
    model: models[i % models.length],
    dataset: datasets[i % datasets.length],
    dataset_owner: owners[i % owners.length],
    submitter: owners[(i * 7) % owners.length],
    image: {
      key: `images/${i}.png`,
      sha256: createHash('sha256').update(`image-${i}`).digest('hex'),
      size: 100_000 + (i % 5000),
      format: 'png',
      width: 512,
      height: 512,
    },
    state,
    priority: i % 10,
    idempotency_key: `idem-${i}`,
    correlation_id: `corr-${i}`,
    dispatch_count: 1,
    dispatched_at: state === 'queued' ? null : new Date(created.getTime() + 2000),
    published_at: state === 'queued' ? null : new Date(created.getTime() + 2100),
    assigned_on: null,
    worker: `worker-${i % 8}`,
    attempts: 1,
    completed_at: state === 'classified' ? new Date(created.getTime() + 4000) : null,
    label: state === 'classified' ? 'normal' : null,
    score: state === 'classified' ? 0.9 : null,
    created_at: created,
    updated_at: created,
  };
}

function tokenDoc(i: number): Document {
  return { _id: tokenId(i), request: requestId(i), expires_at: new Date(Date.UTC(2027, 0, 1) + i), used: false };
}

async function fill(coll: Collection, make: (i: number) => Document): Promise<void> {
  const have = await coll.estimatedDocumentCount();
  if (have >= docs) return;
  const t0 = performance.now();
  for (let start = have; start < docs; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, docs - start) }, (_, j) => make(start + j));
    await coll.insertMany(batch, { ordered: false });
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`filled ${coll.collectionName}: ${docs - have} docs in ${s.toFixed(1)} s`);
}

/** Times op(i) for i < n, after one warm-up op(n). */
async function time(label: string, op: (i: number) => Promise<unknown>): Promise<void> {
  await op(n); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op(i);
    ms.push(performance.now() - t0);
  }
  console.log(
    `  ${label.padEnd(52)} p50 ${percentile(ms, 50).toFixed(2).padStart(8)} ms   p95 ${percentile(ms, 95)
      .toFixed(2)
      .padStart(8)} ms   (n=${n})`,
  );
}

// The PostgreSQL plan nodes under FerretDB's explain (queryPlanner is PostgreSQL's EXPLAIN JSON).
function planNodes(plan: unknown, out: string[] = []): string[] {
  if (Array.isArray(plan)) plan.forEach((p) => planNodes(p, out));
  else if (plan && typeof plan === 'object') {
    const node = plan as Record<string, unknown>;
    if (typeof node['Node Type'] === 'string') {
      const index = typeof node['Index Name'] === 'string' ? ` on ${node['Index Name']}` : '';
      out.push(`${node['Node Type']}${index}`);
    }
    Object.values(node).forEach((v) => planNodes(v, out));
  }
  return out;
}

async function explain(db: Db, label: string, collection: string, filter: Document): Promise<void> {
  const res = await db.command({ explain: { find: collection, filter, limit: 0 }, verbosity: 'queryPlanner' });
  const nodes = planNodes(res.queryPlanner).join(' > ');
  console.log(`  ${label.padEnd(40)} filterPushdown ${String(res.filterPushdown).padEnd(5)}  ${nodes}`);
}

async function main(): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const db = client.db(dbName);
  if (process.argv.includes('--fresh')) await db.dropDatabase();
  const requests = db.collection('classification_requests');
  const tokens = db.collection('dispatch_tokens');
  // The app's declared indexes (libs/db/src/entities/classification-request.ts).
  await requests.createIndex({ submitter: 1, idempotency_key: 1 }, { unique: true });
  await requests.createIndex({ submitter: 1, _id: -1 });
  await requests.createIndex({ dataset_owner: 1, _id: -1 });
  await requests.createIndex({ state: 1, dispatched_at: 1 });
  await requests.createIndex({ state: 1, published_at: 1, created_at: 1 });
  await tokens.createIndex({ request: 1 });
  await fill(requests, requestDoc);
  await fill(tokens, tokenDoc);

  const pick = (i: number) => (i * 7919) % docs; // spread over the collection
  console.log(`latency at ${docs} docs per collection, one operation at a time (${uri}${dbName})`);
  await time('findOne {_id: ObjectId}', (i) => requests.findOne({ _id: requestId(pick(i)) }));
  await time('findOne {_id: string}', (i) => tokens.findOne({ _id: tokenId(pick(i)) as unknown as ObjectId }));
  await time('findOne {submitter, idempotency_key} (unique index)', (i) =>
    requests.findOne({ submitter: owners[(pick(i) * 7) % owners.length], idempotency_key: `idem-${pick(i)}` }),
  );
  await time('updateOne {_id} $set state, $inc attempts', (i) =>
    requests.updateOne({ _id: requestId(pick(i)) }, { $set: { state: 'classified' }, $inc: { attempts: 1 } }),
  );
  await time("find {state: 'failed'} (0.1 % match, indexed field)", () => requests.find({ state: 'failed' }).toArray());
  await time('find {worker, priority} (no match; fields in no index)', () =>
    requests.find({ worker: 'worker-3', priority: 11 }).limit(1).toArray(),
  );
  // Extra tokens, beyond the filled ones, are inserted (timed) and then deleted (timed).
  const extra = (i: number) => docs + 1 + i;
  await time('insertOne token (string _id)', (i) => tokens.insertOne(tokenDoc(extra(i))));
  await time('deleteOne {_id: string}', (i) => tokens.deleteOne({ _id: tokenId(extra(i)) as unknown as ObjectId }));

  console.log('explain (what FerretDB pushes down to PostgreSQL and the plan PostgreSQL chose)');
  const id = requestId(pick(3));
  await explain(db, '{_id: ObjectId}', 'classification_requests', { _id: id });
  await explain(db, '{_id: string}', 'dispatch_tokens', { _id: tokenId(3) });
  await explain(db, "{state: 'failed'}", 'classification_requests', { state: 'failed' });
  await explain(db, "{state: {$eq: 'failed'}}", 'classification_requests', { state: { $eq: 'failed' } });
  await explain(db, '{_id: {$in: [a, b]}}', 'classification_requests', { _id: { $in: [id, requestId(5)] } });
  await explain(db, '{dispatched_at: {$lt: t}}', 'classification_requests', { dispatched_at: { $lt: new Date() } });
  await explain(db, "{state: 'failed', dispatched_at: {$lt}}", 'classification_requests', {
    state: 'failed',
    dispatched_at: { $lt: new Date() },
  });
  await explain(db, "{'image.format': 'png'}", 'classification_requests', { 'image.format': 'png' });
  await explain(db, "{worker: 'worker-3'} (no index)", 'classification_requests', { worker: 'worker-3' });
  await client.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
