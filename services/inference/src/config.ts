import { hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { env, loadConfig } from '@cxr/config';

export const InferenceConfigSchema = Type.Object({
  LOG_LEVEL: env.logLevel,
  HOST: env.host,
  /** GET /health and /stats; 0 picks a free port. */
  HEALTH_PORT: env.port(8081),
  AMQP_URL: env.amqpUrl,
  ...env.s3,
  /** Jobs one replica works on at once (RabbitMQ prefetch). Scale out with replicas, not this. */
  PREFETCH: env.positiveInt(2, 64),
  /** Loaded models kept in memory, least recently used evicted first. */
  MODEL_CACHE_SIZE: env.positiveInt(4, 256),
  MAX_MODEL_BYTES: env.positiveInt(200 * 1024 * 1024),
  MAX_IMAGE_BYTES: env.positiveInt(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: env.positiveInt(50_000_000),
  /** ONNX Runtime threads per inference; 1 lets replicas, not threads, use the cores. */
  INTRA_OP_THREADS: env.positiveInt(1, 64),
  WORKER_ID: Type.String({ minLength: 1, maxLength: 128, default: `${hostname()}-${process.pid}` }),
});
export type InferenceConfig = Static<typeof InferenceConfigSchema>;

export function loadInferenceConfig(source: Record<string, string | undefined> = process.env): InferenceConfig {
  return loadConfig(InferenceConfigSchema, source);
}
