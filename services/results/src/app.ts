import type { FastifyInstance } from 'fastify';
import type { Broker } from '@cxr/broker';
import type { Database } from '@cxr/db';
import { buildHealthApp } from '@cxr/lifecycle';
import type { Registry } from '@cxr/metrics';
import { resultsStats, type ResultsMetrics } from './metrics';

/** The results service's HTTP face: health of its dependencies, its metrics and counters. */
export function buildApp(deps: {
  broker: Broker;
  db: Database;
  registry: Registry;
  metrics: ResultsMetrics;
}): FastifyInstance {
  return buildHealthApp(
    {
      mongodb: () => deps.db.ping(),
      rabbitmq: () => deps.broker.ping(),
    },
    deps.registry,
    async () => ({ ...(await resultsStats(deps.metrics)), databaseOperations: deps.db.operations() }),
  );
}
