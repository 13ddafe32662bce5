import { counterBy, counterOf, countsBy, gaugeOf, Histogram, type Registry } from '@cxr/metrics';
import type { InferenceEngine } from './inference-engine';
import type { ModelCache } from './model-cache';
import type { OrtPool } from './ort-pool';

/** What became of a job delivery; `held`: held through a dependency's outage and tried again. */
export const JOB_OUTCOMES = ['classified', 'failed', 'invalid', 'retried', 'held'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

/** From milliseconds (a fast decode) to two minutes (a queue behind a backlog). */
const STAGE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The inference service's families; README "Metrics" lists them. */
export function inferenceMetrics(registry: Registry) {
  const registers = [registry];
  const stage = (name: string, help: string, labelNames: string[] = []) =>
    new Histogram({ name, help, labelNames, buckets: STAGE_BUCKETS, registers });
  const jobs = counterBy(registry, {
    name: 'cxr_inference_jobs_total',
    help: 'Job deliveries handled, by outcome (classified, failed, invalid, retried, held).',
    label: 'outcome',
    values: JOB_OUTCOMES,
  });
  return {
    jobs,
    queueWait: stage('cxr_inference_queue_wait_seconds', 'From dispatch by the gateway to this worker taking the job.'),
    fetchImage: stage('cxr_inference_fetch_image_seconds', 'Reading and verifying the image from S3.'),
    preprocess: stage('cxr_inference_preprocess_seconds', 'Decoding and resizing the image into a tensor.'),
    fetchModel: stage(
      'cxr_inference_fetch_model_seconds',
      'Waiting for the model session: near 0 on a cache hit, download and load on a miss.',
    ),
    // `model` is bounded: a model's series are removed when it leaves the model cache (MODEL_CACHE_SIZE).
    inference: stage(
      'cxr_inference_inference_seconds',
      'From handing the tensor over to its scores (wait for a batch and a thread, and the run), by model id.',
      ['model'],
    ),
    job: stage('cxr_inference_job_seconds', 'A whole job, from taking it to publishing its result.'),
    batchSize: new Histogram({
      name: 'cxr_inference_batch_size',
      help: 'Images ONNX Runtime ran together in one batch.',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
  };
}
export type InferenceMetrics = ReturnType<typeof inferenceMetrics>;

/** Families read at scrape time from the objects that count them. */
export function watchInferenceParts(
  registry: Registry,
  parts: { models: ModelCache; pool: Pick<OrtPool, 'stats' | 'threads' | 'busyThreads'> },
): void {
  const { models, pool } = parts;
  counterOf(
    registry,
    { name: 'cxr_inference_model_cache_hits_total', help: 'Jobs whose model was cached.' },
    () => models.hits,
  );
  counterOf(
    registry,
    { name: 'cxr_inference_model_cache_loads_total', help: 'Models downloaded and loaded (cache misses).' },
    () => models.misses,
  );
  counterOf(
    registry,
    { name: 'cxr_inference_model_cache_evictions_total', help: 'Models evicted from the cache.' },
    () => models.evictions,
  );
  gaugeOf(registry, { name: 'cxr_inference_model_cache_models', help: 'Models in the cache.' }, () => models.size);
  gaugeOf(registry, { name: 'cxr_inference_threads', help: 'ONNX Runtime threads.' }, () => pool.threads);
  gaugeOf(
    registry,
    { name: 'cxr_inference_busy_threads', help: 'ONNX Runtime threads running a batch.' },
    () => pool.busyThreads,
  );
  counterOf(
    registry,
    { name: 'cxr_inference_thread_restarts_total', help: 'ONNX Runtime threads that died and were replaced.' },
    () => pool.stats.threadRestarts,
  );
}

/** GET /stats: the same counters as JSON (what the recovery tests and tools read). */
export async function inferenceStats(
  metrics: InferenceMetrics,
  parts: {
    models: ModelCache;
    pool: Pick<OrtPool, 'stats' | 'threads' | 'busyThreads'>;
    engine: Pick<InferenceEngine, 'stats'>;
  },
): Promise<Record<string, unknown>> {
  const { held, ...jobs } = await countsBy(metrics.jobs, 'outcome');
  const { models, pool, engine } = parts;
  return {
    ...jobs,
    heldThroughOutage: held,
    modelCache: { size: models.size, hits: models.hits, misses: models.misses, evictions: models.evictions },
    inference: {
      threads: pool.threads,
      busyThreads: pool.busyThreads,
      threadRestarts: pool.stats.threadRestarts,
      ...engine.stats,
    },
  };
}
