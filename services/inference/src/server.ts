import { Broker, Topology } from '@cxr/broker';
import { configOrExit, DependencyGate, runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { ObjectStore } from '@cxr/storage';
import { buildApp } from './app';
import { loadInferenceConfig } from './config';
import { ModelCache } from './model-cache';
import { createJobHandler, type WorkerStats } from './worker';

const cfg = configOrExit('inference', loadInferenceConfig);
const logger = createLogger({ service: 'inference', level: cfg.LOG_LEVEL });

void runService('inference', logger, async (fail, defer) => {
  const store = ObjectStore.fromEnv(cfg);
  defer(() => store.close());
  const models = new ModelCache(store, cfg.MODEL_CACHE_SIZE, cfg.MAX_MODEL_BYTES, cfg.INTRA_OP_THREADS);
  defer(() => models.close());
  const broker = await Broker.connect(cfg.AMQP_URL, {
    name: `cxr-inference ${cfg.WORKER_ID}`,
    logger,
    reconnect: { maxDelayMs: 5_000 },
  });
  // Closed before the store and models: it stops consuming and waits for in-flight jobs.
  defer(() => broker.close());
  broker.on('lost', fail);
  await broker.checkTopology([Topology.jobsQueue], [Topology.resultsExchange, Topology.invalidExchange]);

  const stats: WorkerStats = { classified: 0, failed: 0, invalid: 0, retried: 0, heldThroughOutage: 0 };
  const app = buildApp({ broker, store, models, stats });
  await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
  defer(() => app.close());

  // While S3 is down the worker takes no jobs (its consumer is cancelled) and holds the ones it
  // has; it starts paused and consumes once S3 answers.
  await broker.pauseConsumers();
  const dependencies = new DependencyGate({
    checks: { s3: () => store.ping() },
    logger,
    onDown: () => broker.pauseConsumers(),
    onUp: () => broker.resumeConsumers(),
  });
  dependencies.start();
  defer(() => dependencies.stop());
  const handler = createJobHandler(
    {
      broker,
      dependencies,
      store,
      models,
      logger,
      workerId: cfg.WORKER_ID,
      maxImageBytes: cfg.MAX_IMAGE_BYTES,
      maxImagePixels: cfg.MAX_IMAGE_PIXELS,
    },
    stats,
  );
  await broker.consume(Topology.jobsQueue, cfg.PREFETCH, handler);
});
