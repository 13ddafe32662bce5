import Fastify, { type FastifyInstance } from 'fastify';
import { checkDependencies, type Check } from './health';

/**
 * The HTTP face of a worker service: GET /health with each dependency's state, and
 * GET /metrics-style counters as JSON at /stats. It never listens by itself.
 */
export function buildHealthApp(checks: Record<string, Check>, stats: () => Record<string, unknown>): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/health', async (_request, reply) => {
    const report = await checkDependencies(checks);
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
  app.get('/stats', async () => stats());
  return app;
}
