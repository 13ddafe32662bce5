import { createServer, STATUS_CODES } from 'node:http';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import ajvCompiler, { type ValidatorFactory } from '@fastify/ajv-compiler';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Broker } from '@cxr/broker';
import type { ClassificationRequests, Database } from '@cxr/db';
import { healthRoute } from '@cxr/lifecycle';
import { metricsRoute, type Registry } from '@cxr/metrics';
import type { Tracer } from '@cxr/tracing';
import type { ObjectStore } from '@cxr/storage';
import type { GatewayConfig } from './config';
import { forbidden, HttpError, outageOf, unauthorized, unavailable } from './errors';
import { swaggerOptions } from './openapi';
import { RESPONSE_SCHEMAS } from './schemas';
import type { BacklogMonitor } from './lib/shedding';
import { SubmissionGate } from './lib/admission';
import type { CompletionWaiters } from './lib/completion-waiters';
import { MetadataCache } from './lib/access';
import { ConcurrencyLimit } from './lib/concurrency-limit';
import type { Dispatcher } from './dispatch/dispatcher';
import type { UnsentJobs } from './dispatch/unsent-jobs';
import { gatewayMetrics, observeRequests, type SubmissionOutcome } from './metrics';
import { requestIdOf, traceRequests, tracingOptions } from './tracing';
import auth from './plugins/auth';
import rateLimits from './plugins/rate-limits';
import { classificationsRoutes } from './routes/classifications';
import { datasetsRoutes } from './routes/datasets';
import { modelsRoutes } from './routes/models';
import { usersRoutes } from './routes/users';
import { webRoutes } from './routes/web';
import { AddressGuard } from './webhooks/address-guard';

export interface GatewayDeps {
  config: GatewayConfig;
  db: Database;
  requests: ClassificationRequests;
  store: ObjectStore;
  broker: Broker;
  dispatcher: Dispatcher;
  unsent: UnsentJobs;
  waiters: CompletionWaiters;
  /** Sheds submissions while the jobs queue is too deep; none when absent. */
  backlog?: BacklogMonitor;
  /** Where the gateway's metrics go (GET /metrics). */
  registry: Registry;
  tracer: Tracer;
}

/** The routes that queue a job: shed first when the queue is too deep. */
const SUBMISSIONS = new Set(['/v1/datasets/:id/classifications', '/v1/models/:id/classifications']);
const isSubmission = (request: FastifyRequest) =>
  request.method === 'POST' && SUBMISSIONS.has(request.routeOptions.url ?? '');

/** Builds the gateway without listening: server.ts listens, tests may `inject`. */
export async function buildApp(deps: GatewayDeps, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const { config } = deps;
  const headersTimeout = config.HEADERS_TIMEOUT_SECONDS * 1000;
  const shedAs = new WeakMap<FastifyRequest, SubmissionOutcome>();
  const metrics = gatewayMetrics(deps.registry);
  const gate = new SubmissionGate(config.MAX_SUBMISSIONS_IN_FLIGHT, deps.backlog);
  // Set when the server starts closing: every answer from then on closes its connection.
  let closing = false;
  const app = Fastify({
    ...options,
    ...tracingOptions(deps.tracer, (request) => shedAs.has(request)),
    // The server Fastify would make, with the submission gate's listener in front of the router.
    serverFactory: (router, settings) => {
      const listener = gate.listener(
        router,
        requestIdOf,
        (shed, route, seconds) => {
          metrics.submissions.inc({ outcome: shed.reason });
          metrics.http.observe({ method: 'POST', route, status_code: 503 }, seconds);
        },
        () => closing,
      );
      // Node checks the headers timeout on a timer; every 30 s by default, which would let a
      // slowloris client hold a connection for up to headersTimeout + 30 s.
      const server = createServer(
        { headersTimeout, connectionsCheckingInterval: Math.min(5_000, headersTimeout / 2) },
        listener,
      );
      // As Fastify sets them on a server of its own (its settings come untyped, defaults applied).
      const setting = (name: string) => (typeof settings[name] === 'number' ? settings[name] : undefined);
      server.keepAliveTimeout = setting('keepAliveTimeout') ?? server.keepAliveTimeout;
      server.requestTimeout = setting('requestTimeout') ?? server.requestTimeout;
      server.setTimeout(setting('connectionTimeout') ?? 0);
      const perSocket = setting('maxRequestsPerSocket');
      if (perSocket) server.maxRequestsPerSocket = perSocket;
      return server;
    },
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    schemaController: { compilersFactory: { buildValidator: bodiesAsSent() } },
    clientErrorHandler: answerClientError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  observeRequests(app, metrics, isSubmission, shedAs);
  traceRequests(app);
  // First of all, before rate limits, authentication and the body.
  admitSubmissions(app, gate, deps.backlog, shedAs);

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string; validation?: unknown }, request, reply) => {
    // A 5xx names the request id that finds it in the logs (also in the X-Request-Id header).
    const answer = (status: number, code: string, message: string) =>
      reply
        .code(status)
        .send(status >= 500 ? { error: code, message, request_id: request.id } : { error: code, message });
    if (error instanceof HttpError) {
      // A client that stopped sending its body does not keep the connection.
      if (error.statusCode === 408) reply.header('connection', 'close');
      return answer(error.statusCode, error.code, error.message);
    }
    if (error.validation) return answer(400, 'VALIDATION', error.message);
    const status = error.statusCode ?? 500;
    if (error.code === 'FST_REQ_FILE_TOO_LARGE') {
      return answer(413, 'TOO_LARGE', 'the uploaded file is larger than this endpoint allows');
    }
    if (status >= 400 && status < 500) {
      // Fastify's and plugins' own client errors (bad JSON, too large, wrong content type…).
      return answer(status, error.code ?? 'BAD_REQUEST', error.message);
    }
    if (error.code === 'FST_ERR_HANDLER_TIMEOUT') {
      request.log.error({ err: error }, 'request took longer than its handlerTimeout');
      const late = unavailable('the request took too long to complete; try again shortly');
      return answer(late.statusCode, late.code, late.message);
    }
    const outage = outageOf(error);
    if (outage) {
      request.log.error({ err: error }, 'dependency unavailable');
      return answer(outage.statusCode, outage.code, outage.message);
    }
    request.log.error({ err: error }, 'request failed');
    return answer(500, 'INTERNAL', 'internal error; request_id finds it in the logs');
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` }),
  );

  await app.register(swagger, swaggerOptions);
  for (const schema of RESPONSE_SCHEMAS) app.addSchema(schema);
  // The document in a browser; no key needed to read it (a call tried from it sends one), rate limits apply.
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    // Its assets come from this origin, over whatever scheme the page came by: plain HTTP behind no proxy too.
    transformStaticCSP: (header) => header.replace(/\s*upgrade-insecure-requests;?/, ''),
  });
  await app.register(multipart, {
    limits: { fields: 10, fieldSize: 64 * 1024, files: 1, parts: 12, fileSize: config.MAX_IMAGE_BYTES },
  });
  // Per-IP before authentication (a flood of bad keys costs no key lookups), per-key after it.
  await app.register(rateLimits, {
    perIp: config.RATE_LIMIT_PER_IP,
    perKey: config.RATE_LIMIT_PER_KEY,
    windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS,
    exempt: ['/live', '/ready', '/health', '/stats', '/metrics'],
  });
  await app.register(auth, {
    db: deps.db,
    adminApiKey: config.ADMIN_API_KEY,
    cacheSeconds: config.AUTH_CACHE_SECONDS,
  });
  // Open long-polls answer at once when the server closes, so shutdown does not wait for them,
  // and each answer sent while closing closes its connection: the server's close() waits for
  // every connection, and one kept alive after its answer would hold it until the grace runs out.
  app.addHook('preClose', async () => {
    closing = true;
    deps.waiters.close();
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  await app.register(healthRoute, {
    checks: { mongodb: () => deps.db.ping(), s3: () => deps.store.ping(), rabbitmq: () => deps.broker.ping() },
  });
  // Counts and timings only, like the probes: open, and kept off the public ingress (README "Metrics").
  await app.register(metricsRoute, { registry: deps.registry });

  // Operators' counters (what the benchmark reads): admins only.
  app.get('/stats', { schema: { hide: true } }, async (request) => {
    if (!request.principal) throw unauthorized('send an API key as "Authorization: Bearer <key>"');
    if (!request.principal.isAdmin) throw forbidden('only an admin can read the counters');
    return { databaseOperations: deps.db.operations() };
  });

  const metadata = new MetadataCache(deps.db, config.METADATA_CACHE_SECONDS * 1000);
  await app.register(
    async (v1) => {
      // Any change to a dataset or model clears what submissions cached, before it is answered.
      v1.addHook('onSend', async (request, reply) => {
        if (
          request.method !== 'GET' &&
          reply.statusCode < 400 &&
          /^\/v1\/(datasets|models)\b/.test(request.url) &&
          !request.url.includes('/classifications')
        )
          metadata.clear();
      });
      await v1.register(usersRoutes, { db: deps.db, webhookSigningKey: config.WEBHOOK_SIGNING_KEY });
      await v1.register(datasetsRoutes, { db: deps.db, ratioTolerance: config.RATIO_TOLERANCE });
      await v1.register(modelsRoutes, {
        db: deps.db,
        store: deps.store,
        maxModelBytes: config.MAX_MODEL_BYTES,
        tmpDir: config.TMP_DIR,
        // Each check loads a whole model into memory in a worker thread: one at a time.
        modelChecks: new ConcurrencyLimit(1),
        modelCheckTimeoutMs: config.MODEL_CHECK_TIMEOUT_SECONDS * 1000,
        bodyIdleMs: config.BODY_IDLE_SECONDS * 1000,
        handlerTimeoutMs: options.handlerTimeout ?? 0,
      });
      await v1.register(classificationsRoutes, {
        db: deps.db,
        requests: deps.requests,
        store: deps.store,
        dispatcher: deps.dispatcher,
        unsent: deps.unsent,
        waiters: deps.waiters,
        metadata,
        maxImageBytes: config.MAX_IMAGE_BYTES,
        spoolDir: config.TMP_DIR ?? tmpdir(),
        uploadMemoryBytes: config.UPLOAD_MEMORY_BYTES,
        bodyIdleMs: config.BODY_IDLE_SECONDS * 1000,
        maxImagePixels: config.MAX_IMAGE_PIXELS,
        maxImageDecodedBytes: config.MAX_IMAGE_DECODED_BYTES,
        ratioTolerance: config.RATIO_TOLERANCE,
        callbackGuard: new AddressGuard(config.WEBHOOK_ALLOWED_NETWORKS),
      });
      v1.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: '/v1' },
  );
  await app.register(webRoutes);
  return app;
}

/**
 * The router's side of admission: a submission the gate's listener did not see (a path it does not
 * match, `inject`) is admitted or shed here, first of all hooks, with a ready-made body: no error
 * object, no serializer, no log line of its own (it is counted), and its upload is never read.
 */
function admitSubmissions(
  app: FastifyInstance,
  gate: SubmissionGate,
  backlog: BacklogMonitor | undefined,
  shedAs: WeakMap<FastifyRequest, SubmissionOutcome>,
): void {
  app.addHook('onRequest', async (request, reply) => {
    if (!isSubmission(request)) return;
    const shed = gate.admit(request.raw, reply.raw);
    if (!shed) return;
    shedAs.set(request, shed.reason);
    return reply
      .code(503)
      .header('retry-after', shed.retryAfterSeconds)
      .type('application/json; charset=utf-8')
      .send(shed.body);
  });
  if (backlog?.enabled) {
    app.addHook('onResponse', async (request, reply) => {
      if (reply.statusCode === 202 && isSubmission(request)) backlog.accepted();
    });
  }
}

/**
 * Errors of Node's HTTP parser, before any route runs (a malformed request line or header, a
 * body that ends before its Content-Length, requestTimeout): answered in the API's error shape
 * when the socket still takes it, then the connection is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request did not arrive in full in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'the request headers are larger than the server takes']
        : error.code === 'HPE_INVALID_EOF_STATE'
          ? [400, 'BAD_REQUEST', 'the connection ended before the body its Content-Length announced']
          : [400, 'BAD_REQUEST', `malformed HTTP request (${error.code ?? error.message})`];
  if (socket.writable) {
    const body = JSON.stringify({ error: code, message });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/**
 * Query strings and params are text, so their numbers and booleans are coerced; a JSON body is
 * validated as sent: a number where a string is expected is a 400, not a string.
 */
function bodiesAsSent(): ValidatorFactory {
  const coercing = ajvCompiler();
  const exact = ajvCompiler();
  return (externalSchemas, options) => {
    const forText = coercing(externalSchemas, options);
    const forBodies = exact(externalSchemas, {
      ...options,
      mode: undefined,
      customOptions: { ...options?.customOptions, coerceTypes: false },
    });
    return (route) => (route.httpPart === 'body' ? forBodies : forText)(route);
  };
}
