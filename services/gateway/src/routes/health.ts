import type { FastifyPluginAsync } from 'fastify';
import type { Broker } from '@cxr/broker';
import type { Database } from '@cxr/db';
import type { ObjectStore } from '@cxr/storage';
import { checkDependencies } from '@cxr/lifecycle';

export const healthRoutes: FastifyPluginAsync<{ db: Database; store: ObjectStore; broker: Broker }> = async (
  app,
  deps,
) => {
  app.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const report = await checkDependencies({
      mongodb: () => deps.db.ping(),
      s3: () => deps.store.ping(),
      rabbitmq: async () => {
        if (!deps.broker.isOpen) throw new Error('connection closed');
      },
    });
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
};
