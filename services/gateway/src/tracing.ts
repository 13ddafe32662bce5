import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify';
import { parseTraceparent, TRACEPARENT, type Span, type Tracer } from '@cxr/tracing';

/** An X-Request-Id a client may choose: short, and nothing a log viewer could misread. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const spans = new WeakMap<IncomingMessage, Span>();

/** The span of an HTTP request: its trace id is in every log line of the request; its jobs continue it. */
export function requestSpan(request: FastifyRequest): Span | undefined {
  return spans.get(request.raw);
}

/**
 * Request ids and traces, as Fastify options: the request id is the client's X-Request-Id when
 * it sent a usable one, else a new UUID; the trace continues the client's `traceparent`, else
 * starts. The per-request logger is made once, with both bound (Fastify's "incoming request"
 * line included).
 */
export function tracingOptions(
  tracer: Tracer,
): Pick<FastifyServerOptions, 'genReqId' | 'childLoggerFactory' | 'requestIdLogLabel'> {
  return {
    requestIdLogLabel: 'request_id',
    genReqId: (raw) => {
      const sent = raw.headers['x-request-id'];
      return typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID();
    },
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
