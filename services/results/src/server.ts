import { Broker, Topology } from '@cxr/broker';
import { connectDatabase } from '@cxr/db';
import { runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { buildApp } from './app';
import { loadResultsConfig, type ResultsConfig } from './config';
import { createRecorder, newRecorderStats } from './recorder';

let cfg: ResultsConfig;
try {
  cfg = loadResultsConfig();
} catch (error) {
  console.error(`results: ${(error as Error).message}`);
  process.exit(1);
}
const logger = createLogger({ service: 'results', level: cfg.LOG_LEVEL });

void runService('results', logger, async (fail) => {
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
    const db = await connectDatabase(cfg.MONGODB_URI, cfg.MONGODB_DATABASE);
    closers.push(() => db.close());
    const broker = await Broker.connect(cfg.AMQP_URL, { name: 'cxr-results', logger });
    closers.push(() => broker.close());
    broker.on('lost', fail);
    await broker.checkTopology([Topology.resultsQueue, Topology.jobsDeadQueue], [Topology.invalidExchange]);

    const stats = newRecorderStats();
    const app = buildApp({ broker, db, stats });
    await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
    closers.push(() => app.close());

    const recorder = createRecorder({ db, broker, logger }, stats);
    await broker.consume(Topology.resultsQueue, cfg.PREFETCH, recorder.handleResult);
    await broker.consume(Topology.jobsDeadQueue, 1, recorder.handleDeadJob);
    return { stop };
  } catch (error) {
    await stop();
    throw error;
  }
});
