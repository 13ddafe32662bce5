import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import { parseTraceparent, TRACEPARENT, type Span, type Tracer } from '@cxr/tracing';

/** An X-Request-Id a client may choose: short, and nothing a log viewer could misread. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const spans = new WeakMap<IncomingMessage, Span>();

/** A request's id: the client's X-Request-Id when it sent a usable one, else a new UUID. */
export function requestIdOf(raw: IncomingMessage): string {
  const sent = raw.headers['x-request-id'];
  return typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
}

/** The span of an HTTP request: its trace id is in every log line of the request; its jobs continue it. */
export function requestSpan(request: FastifyRequest): Span | undefined {
  return spans.get(request.raw);
}

/**
 * One line per answered request, "request completed" with the request's method, URL, status and
 * time, at info; Fastify's "incoming request" line is at debug. `quiet` answers are not logged
 * one by one: a flood's shed submissions would otherwise cost the gateway a log line each at the
 * moment it has least to spare (they are counted in cxr_gateway_submissions_total).
 */
class RequestLog extends LogController {
  constructor(private readonly quiet: (request: FastifyRequest) => boolean) {
    super({ requestIdLogLabel: 'request_id' });
  }

  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) return super.requestCompleted(error, request, reply);
    if (this.quiet(request)) return;
    reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * Request ids, traces and request logging, as Fastify options: the request id is `requestIdOf`;
 * the trace continues the client's `traceparent`, else starts. The per-request logger is made once, with both bound.
 */
export function tracingOptions(
  tracer: Tracer,
  quiet: (request: FastifyRequest) => boolean,
): Pick<FastifyServerOptions, 'genReqId' | 'childLoggerFactory' | 'logController'> {
  return {
    logController: new RequestLog(quiet),
    genReqId: requestIdOf,
    childLoggerFactory(logger, bindings, options, raw) {
      const span = tracer.start('HTTP request', parseTraceparent(raw.headers[TRACEPARENT]));
      spans.set(raw, span);
      return logger.child({ ...bindings, trace_id: span.context.traceId }, options);
    },
  };
}

/** Sends the request id back on every answer, and ends the request's span with its route and status. */
export function traceRequests(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    requestSpan(request)?.end({
      name: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
      failed: reply.statusCode >= 500,
      attributes: { 'http.request.method': request.method, 'http.response.status_code': reply.statusCode },
    });
  });
}
