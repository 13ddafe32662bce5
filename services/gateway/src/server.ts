import type { ListenOptions } from 'node:net';
import type { FastifyListenOptions } from 'fastify';
import { Broker, Topology } from '@cxr/broker';
import { ClassificationRequests, connectDatabase } from '@cxr/db';
import { configOrExit, runService } from '@cxr/lifecycle';
import { createLogger } from '@cxr/logging';
import { createRegistry } from '@cxr/metrics';
import { startTracing } from '@cxr/tracing';
import { ObjectStore } from '@cxr/storage';
import { buildApp } from './app';
import { loadGatewayConfig } from './config';
import { CompletionWaiters } from './lib/completion-waiters';
import { BacklogMonitor } from './lib/shedding';
import { policyFromSettings } from '@cxr/request-lifecycle';
import { Dispatcher } from './dispatch/dispatcher';
import { Sweeper } from './dispatch/sweeper';
import { UnsentJobs } from './dispatch/unsent-jobs';
import { webhookMetrics } from './metrics';
import { addListeningSockets } from './lib/listen-sockets';
import { warmUpShedding } from './lib/warm-up';
import { requestIdOf } from './tracing';
import { AddressGuard } from './webhooks/address-guard';
import { WebhookDeliverer } from './webhooks/deliverer';

const cfg = configOrExit('gateway', loadGatewayConfig);
const logger = createLogger({ service: 'gateway', level: cfg.LOG_LEVEL });

void runService('gateway', logger, async (fail, defer) => {
  const tracer = startTracing('cxr-gateway');
  defer(() => tracer.close());
  const db = await connectDatabase(cfg.MONGODB_URI, cfg.MONGODB_DATABASE);
  defer(() => db.close());
  const store = ObjectStore.fromEnv(cfg);
  defer(() => store.close());
  await store.ensureBucket();
  const broker = await Broker.connect(cfg.AMQP_URL, { name: 'cxr-gateway', logger, reconnect: { maxDelayMs: 5_000 } });
  defer(() => broker.close());
  broker.on('lost', fail);
  await broker.checkTopology([], [Topology.jobsExchange, Topology.eventsExchange]);
  const waiters = new CompletionWaiters();
  // The jobs queue's depth, sampled once a second; the drain rate, from the same "request ended" events.
  const backlog = new BacklogMonitor(async () => (await broker.queueDepth(Topology.jobsQueue)).messages, {
    maxBacklogSeconds: cfg.MAX_BACKLOG_SECONDS,
    maxQueuedJobs: cfg.MAX_QUEUED_JOBS,
    drainRateFloor: cfg.DRAIN_RATE_FLOOR,
    maxRetryAfterSeconds: 300,
  });
  // No shedding on what was seen before the connection dropped.
  broker.on('disconnected', () => backlog.invalidate());
  const requests = new ClassificationRequests(db.models, policyFromSettings(cfg));
  const registry = createRegistry();
  const webhooks = new WebhookDeliverer(
    {
      requests,
      guard: new AddressGuard(cfg.WEBHOOK_ALLOWED_NETWORKS),
      logger: logger.child({ component: 'webhooks' }),
      metrics: webhookMetrics(registry),
    },
    {
      signingKey: cfg.WEBHOOK_SIGNING_KEY,
      timeoutMs: cfg.WEBHOOK_TIMEOUT_SECONDS * 1000,
      concurrency: cfg.WEBHOOK_CONCURRENCY,
    },
  );
  defer(() => webhooks.close());
  await broker.subscribe(Topology.eventsExchange, (content) => {
    try {
      const event = JSON.parse(content.toString()) as { requestId?: unknown; webhook?: unknown };
      if (typeof event.requestId === 'string') {
        waiters.notify(event.requestId);
        backlog.ended();
        // Its first attempt now, not at the next sweep: every replica hears it, one claims it.
        if (event.webhook === true) webhooks.hint(event.requestId);
      }
    } catch {
      logger.warn('ignored an event that is not JSON');
    }
  });

  const dispatcher = new Dispatcher({ requests, models: db.models, broker, logger, tracer });
  // After the server has closed, before the broker does: the jobs of the last submissions go out.
  defer(() => dispatcher.settle());
  const unsent = new UnsentJobs();
  broker.on('reconnected', () => {
    void unsent.flush((job) => dispatcher.publish(job.doc, job.token, job.target), logger);
  });
  const app = await buildApp(
    {
      config: cfg,
      db,
      requests,
      store,
      broker,
      dispatcher,
      unsent,
      waiters,
      backlog,
      registry,
      tracer,
    },
    // No socket inactivity timeout: a ?wait long-poll is silent for up to 60 s. requestTimeout bounds
    // receiving a request (its headers within HEADERS_TIMEOUT_SECONDS, set in app.ts), handlerTimeout
    // its whole handling: the body, then the work after it (a model upload adds its model check's bound).
    {
      loggerInstance: logger,
      requestTimeout: 120_000,
      handlerTimeout: 180_000,
      connectionTimeout: 0,
      trustProxy: false,
    },
  );
  if (cfg.WARM_UP_REQUESTS > 0) {
    const warm = await warmUpShedding(cfg.WARM_UP_REQUESTS, requestIdOf);
    logger.info({ shed: warm.shed, ms: Math.round(warm.ms) }, 'shedding warmed up before listening');
  }
  // Fastify hands its listen options to Node's server.listen whole; its type lacks reusePort.
  const listen: FastifyListenOptions & Pick<ListenOptions, 'reusePort'> = {
    host: cfg.HOST,
    port: cfg.PORT,
    reusePort: cfg.LISTEN_SOCKETS > 1,
  };
  await app.listen(listen);
  // The added sockets stop listening first, so no connection comes in after the server closes.
  // The server's close answers the long-polls but waits only for the connections it accepted
  // itself: the added sockets' are awaited after it, before the database and broker close.
  let closeAdded = async (): Promise<void> => {};
  defer(async () => {
    const added = closeAdded();
    await app.close();
    await added;
  });
  closeAdded = await addListeningSockets(app.server, cfg.LISTEN_SOCKETS);
  backlog.start();
  defer(() => backlog.stop());

  const sweeper = new Sweeper(
    { requests, models: db.models, dispatcher, store, webhooks, logger },
    { intervalMs: cfg.SWEEP_INTERVAL_SECONDS * 1000 },
  );
  sweeper.start();
  defer(() => sweeper.stop());
});
