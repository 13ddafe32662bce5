import { Broker, Topology } from '@cxr/broker';
import { configOrExit, pollingDependencies, runService } from '@cxr/lifecycle';
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
  await store.ping();
  const models = new ModelCache(store, cfg.MODEL_CACHE_SIZE, cfg.MAX_MODEL_BYTES, cfg.INTRA_OP_THREADS);
  defer(() => models.close());
  const broker = await Broker.connect(cfg.AMQP_URL, { name: `cxr-inference ${cfg.WORKER_ID}`, logger });
  // Closed before the store and models: it stops consuming and waits for in-flight jobs.
  defer(() => broker.close());
  broker.on('lost', fail);
  await broker.checkTopology([Topology.jobsQueue], [Topology.resultsExchange, Topology.invalidExchange]);

  const stats: WorkerStats = { classified: 0, failed: 0, invalid: 0, retried: 0, heldThroughOutage: 0 };
  const app = buildApp({ broker, store, models, stats });
  await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
  defer(() => app.close());

  const dependencies = pollingDependencies(() => store.ping());
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
  // Consume only once every dependency answered: a worker that cannot work takes no jobs.
  await broker.consume(Topology.jobsQueue, cfg.PREFETCH, handler);
});
