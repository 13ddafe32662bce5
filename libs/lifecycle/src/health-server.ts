import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { metricsRoute, type Registry } from '@cxr/metrics';
import { checkDependencies, type Check } from './health';

/**
 * The probes. GET /live: the process answers (a liveness probe: restart it only when this
 * fails). GET /ready: each dependency's state, 200 when all are up and 503 otherwise (a
 * readiness probe: take it out of service, do not restart it; a worker whose dependency is down
 * has already paused its consumers). GET /health is /ready under its older name.
 */
export const healthRoute: FastifyPluginAsync<{ checks: Record<string, Check> }> = async (app, { checks }) => {
  const ready = async (_request: FastifyRequest, reply: FastifyReply) => {
    const report = await checkDependencies(checks);
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  };
  app.get('/live', { schema: { hide: true } }, async () => ({ status: 'live' }));
  app.get('/ready', { schema: { hide: true } }, ready);
  app.get('/health', { schema: { hide: true } }, ready);
};

/**
 * The HTTP face of a worker service: the probes (GET /live, /ready and /health), its metrics at
 * GET /metrics, and a JSON view of its counters at GET /stats. It never listens by itself.
 */
export function buildHealthApp(
  checks: Record<string, Check>,
  registry: Registry,
  stats: () => Promise<Record<string, unknown>>,
): FastifyInstance {
  const app = Fastify({ logger: false });
  void app.register(healthRoute, { checks });
  void app.register(metricsRoute, { registry });
  app.get('/stats', async () => stats());
  return app;
}
