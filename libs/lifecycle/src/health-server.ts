import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { checkDependencies, type Check } from './health';

/** GET /health: each dependency's state, 200 when all are up and 503 otherwise. */
export const healthRoute: FastifyPluginAsync<{ checks: Record<string, Check> }> = async (app, { checks }) => {
  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const report = await checkDependencies(checks);
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
};

/**
 * The HTTP face of a worker service: GET /health with each dependency's state, and its
 * counters as JSON at GET /stats. It never listens by itself.
 */
export function buildHealthApp(checks: Record<string, Check>, stats: () => Record<string, unknown>): FastifyInstance {
  const app = Fastify({ logger: false });
  void app.register(healthRoute, { checks });
  app.get('/stats', async () => stats());
  return app;
}
