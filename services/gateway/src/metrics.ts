import type { FastifyInstance, FastifyRequest } from 'fastify';
import { counterBy, Histogram, type Registry } from '@cxr/metrics';

/**
 * What became of a submission: `accepted` (2xx), `shed_backlog` (the jobs queue is too deep),
 * `shed_in_flight` (MAX_SUBMISSIONS_IN_FLIGHT reached), `refused` (another 4xx: bad image,
 * unknown model, rate limit…), `failed` (another 5xx).
 */
export const SUBMISSION_OUTCOMES = ['accepted', 'shed_backlog', 'shed_in_flight', 'refused', 'failed'] as const;
export type SubmissionOutcome = (typeof SUBMISSION_OUTCOMES)[number];

/** The gateway's families; README "Metrics" lists them. */
export function gatewayMetrics(registry: Registry) {
  const registers = [registry];
  const submissions = counterBy(registry, {
    name: 'cxr_gateway_submissions_total',
    help: 'Classification submissions, by outcome (accepted, shed_backlog, shed_in_flight, refused, failed).',
    label: 'outcome',
    values: SUBMISSION_OUTCOMES,
  });
  return {
    submissions,
    // `route` is the route's pattern (`/v1/models/:id`), or `unmatched`: never the URL.
    http: new Histogram({
      name: 'cxr_gateway_http_request_duration_seconds',
      help: 'HTTP requests, from arrival to the answer sent, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;

/**
 * What became of a webhook attempt: `delivered` (2xx), `retry` (failed, tried again later),
 * `gave_up` (failed after its bounded time), `refused_ssrf` (its target is a non-public address).
 */
export const WEBHOOK_OUTCOMES = ['delivered', 'retry', 'gave_up', 'refused_ssrf'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export function webhookMetrics(registry: Registry) {
  return {
    deliveries: counterBy(registry, {
      name: 'cxr_gateway_webhook_deliveries_total',
      help: 'Webhook attempts, by outcome (delivered, retry, gave_up, refused_ssrf).',
      label: 'outcome',
      values: WEBHOOK_OUTCOMES,
    }),
  };
}
export type WebhookMetrics = ReturnType<typeof webhookMetrics>;

/** Times every answer and counts submissions' outcomes; `shedAs` says why a submission was shed. */
export function observeRequests(
  app: FastifyInstance,
  metrics: GatewayMetrics,
  isSubmission: (request: FastifyRequest) => boolean,
  shedAs: WeakMap<FastifyRequest, SubmissionOutcome>,
): void {
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    metrics.http.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: status },
      reply.elapsedTime / 1000,
    );
    if (!isSubmission(request)) return;
    const outcome = shedAs.get(request) ?? (status < 300 ? 'accepted' : status < 500 ? 'refused' : 'failed');
    metrics.submissions.inc({ outcome });
  });
}
