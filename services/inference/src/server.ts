import { Broker, Topology } from '@cxr/broker';
import { runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { ObjectStore } from '@cxr/storage';
import { buildApp } from './app';
import { loadInferenceConfig, type InferenceConfig } from './config';
import { ModelCache } from './model-cache';
import { createJobHandler, type WorkerStats } from './worker';

let cfg: InferenceConfig;
try {
  cfg = loadInferenceConfig();
} catch (error) {
  console.error(`inference: ${(error as Error).message}`);
  process.exit(1);
}
const logger = createLogger({ service: 'inference', level: cfg.LOG_LEVEL });

void runService('inference', logger, async (fail) => {
  const closers: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error }, 'close failed');
      }
    }
  };
  try {
    const store = ObjectStore.fromConfig({
      endpoint: cfg.S3_ENDPOINT,
      region: cfg.S3_REGION,
      accessKeyId: cfg.S3_ACCESS_KEY_ID,
      secretAccessKey: cfg.S3_SECRET_ACCESS_KEY,
      bucket: cfg.S3_BUCKET,
    });
    closers.push(() => store.close());
    await store.ping();
    const models = new ModelCache(store, cfg.MODEL_CACHE_SIZE, cfg.MAX_MODEL_BYTES, cfg.INTRA_OP_THREADS);
    closers.push(() => models.close());
    const broker = await Broker.connect(cfg.AMQP_URL, { name: `cxr-inference ${cfg.WORKER_ID}`, logger });
    // Closing the broker first cancels consumption and waits for in-flight jobs.
    closers.push(() => broker.close());
    broker.on('lost', fail);
    await broker.checkTopology([Topology.jobsQueue], [Topology.resultsExchange, Topology.invalidExchange]);

    const stats: WorkerStats = { classified: 0, failed: 0, invalid: 0, retried: 0 };
    const app = buildApp({ broker, store, models, stats });
    await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
    closers.push(() => app.close());

    const handler = createJobHandler(
      {
        broker,
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
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
});
