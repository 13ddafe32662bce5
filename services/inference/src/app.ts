import type { FastifyInstance } from 'fastify';
import type { Broker } from '@cxr/broker';
import { buildHealthApp } from '@cxr/lifecycle';
import type { Registry } from '@cxr/metrics';
import type { ObjectStore } from '@cxr/storage';
import type { InferenceEngine } from './inference-engine';
import { inferenceStats, type InferenceMetrics } from './metrics';
import type { ModelCache } from './model-cache';
import type { OrtPool } from './ort-pool';

/** The inference service's HTTP face: health of its dependencies, its metrics and counters. */
export function buildApp(deps: {
  broker: Broker;
  store: ObjectStore;
  models: ModelCache;
  registry: Registry;
  metrics: InferenceMetrics;
  pool: Pick<OrtPool, 'stats' | 'threads' | 'busyThreads'>;
  engine: Pick<InferenceEngine, 'stats'>;
}): FastifyInstance {
  return buildHealthApp(
    {
      rabbitmq: () => deps.broker.ping(),
      s3: () => deps.store.ping(),
    },
    deps.registry,
    () => inferenceStats(deps.metrics, deps),
  );
}
