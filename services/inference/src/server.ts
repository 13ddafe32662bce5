import sharp from 'sharp';
import { Broker, Topology } from '@cxr/broker';
import { configOrExit, gateConsumers, runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { createRegistry } from '@cxr/metrics';
import { startTracing } from '@cxr/tracing';
import { ObjectStore } from '@cxr/storage';
import { buildApp } from './app';
import { ConcurrencyLimit } from './concurrency-limit';
import { loadInferenceConfig } from './config';
import { InferenceEngine } from './inference-engine';
import { ModelCache } from './model-cache';
import { OrtPool } from './ort-pool';
import { inferenceMetrics, watchInferenceParts } from './metrics';
import { createJobHandler } from './worker';

const cfg = configOrExit('inference', loadInferenceConfig);
const logger = createLogger({ service: 'inference', level: cfg.LOG_LEVEL });

void runService('inference', logger, async (fail, defer) => {
  const registry = createRegistry();
  const metrics = inferenceMetrics(registry);
  const tracer = startTracing('cxr-inference');
  defer(() => tracer.close());
  const store = ObjectStore.fromEnv(cfg);
  defer(() => store.close());
  // Parallelism comes from decoding several images at once, each with one libvips thread.
  sharp.concurrency(1);
  const pool = await OrtPool.start({
    threads: cfg.INFERENCE_THREADS,
    intraOpThreads: cfg.INTRA_OP_THREADS,
    onThreadExit: ({ thread, code, error }) =>
      logger.error({ thread, code, err: error }, 'an ONNX Runtime thread died; its jobs go back, a new thread starts'),
  });
  defer(() => pool.close());
  const engine = new InferenceEngine(pool, {
    maxBatch: cfg.MAX_BATCH,
    batchWaitMs: cfg.BATCH_WAIT_MS,
    onBatch: (size) => metrics.batchSize.observe(size),
    onBatchRefused: (handle, reason) =>
      logger.warn(
        { model: handle, reason },
        'model does not batch despite its dynamic batch dimension; runs images alone',
      ),
  });
  const models = new ModelCache(store, cfg.MODEL_CACHE_SIZE, cfg.MAX_MODEL_BYTES, engine, (id) =>
    metrics.inference.remove({ model: id }),
  );
  watchInferenceParts(registry, { models, pool });
  defer(() => models.close());
  logger.info(
    {
      threads: cfg.INFERENCE_THREADS,
      intraOpThreads: cfg.INTRA_OP_THREADS,
      maxBatch: cfg.MAX_BATCH,
      batchWaitMs: cfg.BATCH_WAIT_MS,
      prefetch: cfg.PREFETCH,
      preprocessConcurrency: cfg.PREPROCESS_CONCURRENCY,
    },
    'inference engine ready',
  );
  const broker = await Broker.connect(cfg.AMQP_URL, {
    name: `cxr-inference ${cfg.WORKER_ID}`,
    logger,
    reconnect: { maxDelayMs: 5_000 },
  });
  // Closed before the store and models: it stops consuming and waits for in-flight jobs.
  defer(() => broker.close());
  broker.on('lost', fail);
  await broker.checkTopology([Topology.jobsQueue], [Topology.resultsExchange, Topology.invalidExchange]);

  const app = buildApp({ broker, store, models, registry, metrics, pool, engine });
  await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
  defer(() => app.close());

  // While S3 is down the worker takes no jobs (its consumer is cancelled) and holds the ones it
  // has; it starts paused and consumes once S3 answers.
  const dependencies = await gateConsumers(broker, { s3: () => store.ping() }, logger);
  defer(() => dependencies.stop());
  const handler = createJobHandler(
    {
      broker,
      dependencies,
      store,
      models,
      engine,
      preprocessLimit: new ConcurrencyLimit(cfg.PREPROCESS_CONCURRENCY),
      logger,
      tracer,
      workerId: cfg.WORKER_ID,
      maxImageBytes: cfg.MAX_IMAGE_BYTES,
      maxImagePixels: cfg.MAX_IMAGE_PIXELS,
    },
    metrics,
  );
  await broker.consume(Topology.jobsQueue, cfg.PREFETCH, handler);
});
