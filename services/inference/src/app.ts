import type { FastifyInstance } from 'fastify';
import type { Broker } from '@cxr/broker';
import { buildHealthApp } from '@cxr/lifecycle';
import type { ObjectStore } from '@cxr/storage';
import type { InferenceEngine } from './inference-engine';
import type { ModelCache } from './model-cache';
import type { OrtPool } from './ort-pool';
import type { WorkerStats } from './worker';

/** The inference service's HTTP face: health of its dependencies and its counters. */
export function buildApp(deps: {
  broker: Broker;
  store: ObjectStore;
  models: ModelCache;
  stats: WorkerStats;
  pool: Pick<OrtPool, 'stats' | 'threads' | 'busyThreads'>;
  engine: Pick<InferenceEngine, 'stats'>;
}): FastifyInstance {
  return buildHealthApp(
    {
      rabbitmq: () => deps.broker.ping(),
      s3: () => deps.store.ping(),
    },
    () => ({
      ...deps.stats,
      modelCache: { size: deps.models.size, hits: deps.models.hits, misses: deps.models.misses },
      inference: {
        threads: deps.pool.threads,
        busyThreads: deps.pool.busyThreads,
        threadRestarts: deps.pool.stats.threadRestarts,
        ...deps.engine.stats,
      },
    }),
  );
}
