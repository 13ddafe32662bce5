import type { FastifyInstance } from 'fastify';
import type { Broker } from '@cxr/broker';
import type { Database } from '@cxr/db';
import { buildHealthApp } from '@cxr/lifecycle';
import type { RecorderStats } from './recorder';

/** The results service's HTTP face: health of its dependencies and its counters. */
export function buildApp(deps: { broker: Broker; db: Database; stats: RecorderStats }): FastifyInstance {
  return buildHealthApp(
    {
      mongodb: () => deps.db.ping(),
      rabbitmq: () => deps.broker.ping(),
    },
    () => ({ ...deps.stats, databaseOperations: deps.db.operations() }),
  );
}
