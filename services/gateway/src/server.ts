import { Broker, Topology } from '@cxr/broker';
import { connectDatabase } from '@cxr/db';
import { runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { ObjectStore } from '@cxr/storage';
import { buildApp } from './app';
import { loadGatewayConfig } from './config';
import { createDispatcher } from './lib/dispatch';
import { Sweeper } from './lib/sweeper';

let config;
try {
  config = loadGatewayConfig();
} catch (error) {
  console.error(`gateway: ${(error as Error).message}`);
  process.exit(1);
}
const cfg = config;
const logger = createLogger({ service: 'gateway', level: cfg.LOG_LEVEL });

void runService('gateway', logger, async (fail) => {
  const closers: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    // Reverse order of start; each step on its own so one failure does not skip the rest.
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (error) {
        logger.error({ err: error }, 'close failed');
      }
    }
  };
  try {
    const db = await connectDatabase(cfg.MONGODB_URI, cfg.MONGODB_DATABASE);
    closers.push(() => db.close());
    const store = ObjectStore.fromConfig({
      endpoint: cfg.S3_ENDPOINT,
      region: cfg.S3_REGION,
      accessKeyId: cfg.S3_ACCESS_KEY_ID,
      secretAccessKey: cfg.S3_SECRET_ACCESS_KEY,
      bucket: cfg.S3_BUCKET,
    });
    closers.push(() => store.close());
    await store.ensureBucket();
    const broker = await Broker.connect(cfg.AMQP_URL, { name: 'cxr-gateway', logger });
    closers.push(() => broker.close());
    broker.on('lost', fail);
    await broker.checkTopology([], [Topology.jobsExchange]);

    const dispatcher = createDispatcher({ db, broker, logger, tokenTtlSeconds: cfg.DISPATCH_TOKEN_TTL_SECONDS });
    const app = await buildApp(
      { config: cfg, db, store, broker, dispatcher },
      { loggerInstance: logger, requestTimeout: 120_000, connectionTimeout: 30_000, trustProxy: false },
    );
    await app.listen({ host: cfg.HOST, port: cfg.PORT });
    closers.push(() => app.close());

    const sweeper = new Sweeper(db, dispatcher, logger, {
      intervalMs: cfg.SWEEP_INTERVAL_SECONDS * 1000,
      unpublishedGraceMs: cfg.UNPUBLISHED_GRACE_SECONDS * 1000,
      redispatchAfterMs: cfg.REDISPATCH_AFTER_SECONDS * 1000,
      maxDispatches: cfg.MAX_DISPATCHES,
    });
    sweeper.start();
    closers.push(() => sweeper.stop());
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
});
