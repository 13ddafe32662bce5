import { Broker, Topology } from '@cxr/broker';
import { ClassificationRequests, connectDatabase } from '@cxr/db';
import { policyFromSettings } from '@cxr/request-lifecycle';
import { configOrExit, gateConsumers, holdThroughOutages, runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { createRegistry } from '@cxr/metrics';
import { startTracing } from '@cxr/tracing';
import { buildApp } from './app';
import { loadResultsConfig } from './config';
import { ModelLabels } from './model-labels';
import { resultsMetrics } from './metrics';
import { createRecorder } from './recorder';

const cfg = configOrExit('results', loadResultsConfig);
const logger = createLogger({ service: 'results', level: cfg.LOG_LEVEL });

void runService('results', logger, async (fail, defer) => {
  const db = await connectDatabase(cfg.MONGODB_URI, cfg.MONGODB_DATABASE);
  defer(() => db.close());
  const broker = await Broker.connect(cfg.AMQP_URL, {
    name: 'cxr-results',
    logger,
    reconnect: { maxDelayMs: 5_000 },
  });
  defer(() => broker.close());
  broker.on('lost', fail);
  await broker.checkTopology(
    [Topology.resultsQueue, Topology.jobsDeadQueue],
    [Topology.invalidExchange, Topology.eventsExchange],
  );

  const tracer = startTracing('cxr-results');
  defer(() => tracer.close());
  const registry = createRegistry();
  const metrics = resultsMetrics(registry);
  const app = buildApp({ broker, db, registry, metrics });
  await app.listen({ host: cfg.HOST, port: cfg.HEALTH_PORT });
  defer(() => app.close());

  const requests = new ClassificationRequests(db.models, policyFromSettings(cfg));
  const modelLabels = new ModelLabels(async (id) => {
    const model = await db.models.ClassifierModel.findById(id, { labels: 1 }).lean();
    return model?.labels ?? null;
  });
  const recorder = createRecorder({ requests, broker, logger, modelLabels, tracer }, metrics);
  // While the database is down nothing is consumed, and the messages in hand are held (their
  // deliveries not spent) until it is back.
  const database = await gateConsumers(broker, { mongodb: () => db.ping() }, logger);
  defer(() => database.stop());
  const held = () => metrics.heldThroughOutage.inc();
  await broker.consume(
    Topology.resultsQueue,
    cfg.PREFETCH,
    holdThroughOutages(recorder.handleResult, database, logger, held),
  );
  await broker.consume(Topology.jobsDeadQueue, 1, holdThroughOutages(recorder.handleDeadJob, database, logger, held));
});
