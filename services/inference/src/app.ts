import type { FastifyInstance } from 'fastify';
import type { Broker } from '@cxr/broker';
import { buildHealthApp } from '@cxr/lifecycle';
import type { ObjectStore } from '@cxr/storage';
import type { ModelCache } from './model-cache';
import type { WorkerStats } from './worker';

/** The inference service's HTTP face: health of its dependencies and its counters. */
export function buildApp(deps: {
  broker: Broker;
  store: ObjectStore;
  models: ModelCache;
  stats: WorkerStats;
}): FastifyInstance {
  return buildHealthApp(
    {
      rabbitmq: () => deps.broker.ping(),
      s3: () => deps.store.ping(),
    },
    () => ({
      ...deps.stats,
      modelCache: { size: deps.models.size, hits: deps.models.hits, misses: deps.models.misses },
    }),
  );
}
