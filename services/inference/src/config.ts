import { availableParallelism, hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { env, loadConfig } from '@cxr/config';

const optionalInt = (min: number, max: number, what: string) =>
  Type.Optional(Type.Integer({ minimum: min, maximum: max, description: `${what} from ${min} to ${max}` }));

export const InferenceConfigSchema = Type.Object({
  LOG_LEVEL: env.logLevel,
  HOST: env.host,
  /** GET /health and /stats; 0 picks a free port. */
  HEALTH_PORT: env.port(8081),
  AMQP_URL: env.amqpUrl,
  ...env.s3,
  /**
   * Jobs one replica holds at once (RabbitMQ prefetch). Default 2 x MAX_BATCH x INFERENCE_THREADS:
   * a full batch per thread being run while the next one is fetched and decoded.
   */
  PREFETCH: optionalInt(1, 1024, 'an integer'),
  /** Loaded models kept in memory, least recently used evicted first. */
  MODEL_CACHE_SIZE: env.positiveInt(4, 256),
  MAX_MODEL_BYTES: env.positiveInt(200 * 1024 * 1024),
  MAX_IMAGE_BYTES: env.positiveInt(20 * 1024 * 1024),
  MAX_IMAGE_PIXELS: env.positiveInt(50_000_000),
  /** ONNX Runtime threads (worker_threads), each holding a session of every loaded model. */
  INFERENCE_THREADS: env.positiveInt(1, 64),
  /** ONNX Runtime's own threads per session. Default: the cores shared out among INFERENCE_THREADS. */
  INTRA_OP_THREADS: optionalInt(1, 64, 'an integer'),
  /** Most images of one model run together when its batch dimension is dynamic (1 turns batching off). */
  MAX_BATCH: env.positiveInt(8, 256),
  /** How long the first image of a batch waits for others while a thread is free. */
  BATCH_WAIT_MS: Type.Integer({ minimum: 0, maximum: 1000, default: 5, description: 'milliseconds from 0 to 1000' }),
  /**
   * Images decoded at once, each on one libuv thread with one libvips thread (sharp.concurrency(1)).
   * Default: the cores, but at most UV_THREADPOOL_SIZE - 1 (libuv's pool, 4 unless set in the
   * environment before the process starts), so S3 sockets, DNS and fs keep a thread.
   */
  PREPROCESS_CONCURRENCY: optionalInt(1, 64, 'an integer'),
  WORKER_ID: Type.String({ minLength: 1, maxLength: 128, default: `${hostname()}-${process.pid}` }),
});

/** libuv's thread pool size: read once when the pool starts, so only the environment given at launch counts. */
export function libuvThreads(source: Record<string, string | undefined>): number {
  const n = Number(source.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n >= 1 ? Math.min(n, 1024) : 4;
}

type Derived = 'PREFETCH' | 'INTRA_OP_THREADS' | 'PREPROCESS_CONCURRENCY';
export type InferenceConfig = Omit<Static<typeof InferenceConfigSchema>, Derived> & Record<Derived, number>;

/** The configuration with the settings left unset derived from the others and the machine's cores. */
export function loadInferenceConfig(
  source: Record<string, string | undefined> = process.env,
  cores: number = availableParallelism(),
): InferenceConfig {
  const cfg = loadConfig(InferenceConfigSchema, source);
  return {
    ...cfg,
    INTRA_OP_THREADS: cfg.INTRA_OP_THREADS ?? Math.max(1, Math.floor(cores / cfg.INFERENCE_THREADS)),
    PREFETCH: cfg.PREFETCH ?? Math.min(1024, 2 * cfg.MAX_BATCH * cfg.INFERENCE_THREADS),
    PREPROCESS_CONCURRENCY: cfg.PREPROCESS_CONCURRENCY ?? Math.max(1, Math.min(cores, libuvThreads(source) - 1)),
  };
}
