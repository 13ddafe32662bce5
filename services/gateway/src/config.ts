import { availableParallelism } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { ConfigError, env, loadConfig } from '@cxr/config';
import { reusePortSupported } from './lib/listen-sockets';
import { parseNetworks } from './webhooks/address-guard';

export const DEFAULT_SUBMISSIONS_IN_FLIGHT = 4 * availableParallelism();

export const GatewayConfigSchema = Type.Object({
  HOST: env.host,
  PORT: env.port(8080),
  LOG_LEVEL: env.logLevel,
  AMQP_URL: env.amqpUrl,
  MONGODB_URI: env.mongoUri,
  MONGODB_DATABASE: env.databaseName,
  ...env.s3,
  /** Bootstraps the first user: POST /v1/users with this key. At least 32 characters. */
  ADMIN_API_KEY: Type.String({ minLength: 32, description: 'at least 32 characters' }),
  /** A key's record is read at most once per this many seconds; a revoked key stops working on other replicas within it. 0 reads it every request. */
  AUTH_CACHE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 5, description: 'seconds from 0 to 300' }),
  /** Submissions reuse a dataset's and a model's record for this many seconds; a change through another replica (retiring a model, a new default) shows within it. 0 reads them every submission. */
  METADATA_CACHE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 5, description: 'seconds from 0 to 300' }),
  MAX_MODEL_BYTES: env.positiveInt(200 * 1024 * 1024),
  /** How long loading an uploaded model and running it once may take before it is refused. */
  MODEL_CHECK_TIMEOUT_SECONDS: env.positiveInt(60, 3600),
  MAX_IMAGE_BYTES: env.positiveInt(20 * 1024 * 1024),
  /** An upload up to this many bytes is held in memory; a larger one goes to a file in TMP_DIR as it arrives. */
  UPLOAD_MEMORY_BYTES: Type.Integer({
    minimum: 256 * 1024,
    maximum: 64 * 1024 * 1024,
    default: 4 * 1024 * 1024,
    description: 'bytes from 262144 (256 KiB) to 67108864 (64 MiB)',
  }),
  /** How long a client may send nothing in the middle of a multipart body before the request is dropped (408). */
  BODY_IDLE_SECONDS: env.positiveInt(30, 110),
  /** How long a client may take to send its request line and headers before it gets 408 and the connection closes (slowloris). */
  HEADERS_TIMEOUT_SECONDS: env.positiveInt(20, 120),
  /** Decoded pixels (width × height) an image may have: guards against decompression bombs. */
  MAX_IMAGE_PIXELS: env.positiveInt(50_000_000),
  /**
   * Submissions one gateway reads and stores at once; more are answered 503 with Retry-After at
   * once. Its memory for uploads stays under this × UPLOAD_MEMORY_BYTES. 0: no limit. By default
   * 4 per CPU core (README "Load shedding" says why); set it where the core count seen is not the
   * gateway's share (a container with a CPU limit).
   */
  MAX_SUBMISSIONS_IN_FLIGHT: Type.Integer({
    minimum: 0,
    maximum: 10_000,
    default: DEFAULT_SUBMISSIONS_IN_FLIGHT,
    description: 'an integer from 0 to 10000',
  }),
  /**
   * Shed submissions the gateway answers to itself, over loopback on a server of its own, before
   * it listens: a flood then meets compiled code (README "Load shedding"). 0: none.
   */
  WARM_UP_REQUESTS: Type.Integer({
    minimum: 0,
    maximum: 100_000,
    default: 3000,
    description: 'an integer from 0 to 100000',
  }),
  /**
   * Listening sockets on PORT (SO_REUSEPORT): the event loop accepts one new connection per socket
   * per turn, so more sockets keep a burst of new connections from waiting seconds in the kernel's
   * queue (README "Load shedding"). Above 1 only where Node can (Linux, Node 22.12 on).
   */
  LISTEN_SOCKETS: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: reusePortSupported() ? 16 : 1,
    description: 'an integer from 1 to 64',
  }),
  /** Bytes an image may take decoded (pixels × channels × bytes per sample): 256 MiB holds a 16-bit 8192² grey radiograph or an 8-bit RGB 9000²; a 7000² 16-bit RGBA (392 MB) is refused. */
  MAX_IMAGE_DECODED_BYTES: env.positiveInt(256 * 1024 * 1024),
  /** Relative tolerance of the dataset ratio rule: |r_image − r_dataset| / r_dataset. */
  RATIO_TOLERANCE: Type.Number({ minimum: 0, maximum: 0.5, default: 0.01, description: 'a number from 0 to 0.5' }),
  ...env.lifecycle,
  /** How often the sweeper looks for due lifecycle timers. */
  SWEEP_INTERVAL_SECONDS: env.positiveInt(5, 3600),
  /** Requests per window one API key may make (per gateway replica); 0 disables. */
  RATE_LIMIT_PER_KEY: Type.Integer({ minimum: 0, default: 6000, description: 'an integer from 0 (off) up' }),
  /** Requests per window one client IP may make, with a key or without (per gateway replica); 0 disables. */
  RATE_LIMIT_PER_IP: Type.Integer({ minimum: 0, default: 12_000, description: 'an integer from 0 (off) up' }),
  /** The rate limits' fixed window. */
  RATE_LIMIT_WINDOW_SECONDS: env.positiveInt(60, 3600),
  /** Submissions are refused (503) while the jobs queue holds more than the workers drain in this many seconds; 0 disables. */
  MAX_BACKLOG_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 86_400,
    default: 120,
    description: 'seconds from 0 (off) to 86400',
  }),
  /** Submissions are refused (503) while this many jobs wait in the queue, whatever the drain rate; 0 disables. */
  MAX_QUEUED_JOBS: Type.Integer({ minimum: 0, default: 10_000, description: 'an integer from 0 (off) up' }),
  /** Jobs per second the workers are assumed to drain at least, before more is observed (shedding after a cold start). */
  DRAIN_RATE_FLOOR: Type.Number({
    exclusiveMinimum: 0,
    maximum: 10_000,
    default: 1,
    description: 'jobs per second, above 0',
  }),
  TMP_DIR: Type.Optional(Type.String({ minLength: 1 })),
  /** Webhook signatures: each user's secret is derived from this key (SECURITY.md); changing it rotates them all. At least 32 characters. */
  WEBHOOK_SIGNING_KEY: Type.String({ minLength: 32, description: 'at least 32 characters' }),
  /** Networks (CIDR, comma-separated) callbacks may reach besides public addresses, e.g. 127.0.0.0/8 for a receiver on this machine. Empty: public only. */
  WEBHOOK_ALLOWED_NETWORKS: Type.String({ default: '', description: 'CIDR networks, comma-separated' }),
  /** How long one webhook attempt (connect, send, the answer's status) may take. */
  WEBHOOK_TIMEOUT_SECONDS: env.positiveInt(10, 60),
  /** A webhook is retried until this long after its request ended, then given up. */
  WEBHOOK_RETRY_SECONDS: env.positiveInt(86_400, 7 * 86_400),
  /** The wait before the first retry of a webhook; it doubles with each attempt (with jitter). */
  WEBHOOK_BACKOFF_SECONDS: env.positiveInt(10, 3600),
  /** The longest wait between two attempts of a webhook. */
  WEBHOOK_BACKOFF_MAX_SECONDS: env.positiveInt(3600, 86_400),
  /** Webhook attempts one gateway makes at once; more wait for a later sweep. */
  WEBHOOK_CONCURRENCY: env.positiveInt(32, 1000),
});
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

/** `canReusePort`: whether this Node can bind more than one socket to the port (a parameter for tests). */
export function loadGatewayConfig(
  source: Record<string, string | undefined> = process.env,
  canReusePort: boolean = reusePortSupported(),
): GatewayConfig {
  const config = loadConfig(GatewayConfigSchema, source);
  try {
    parseNetworks(config.WEBHOOK_ALLOWED_NETWORKS);
  } catch (error) {
    throw new ConfigError([{ variable: 'WEBHOOK_ALLOWED_NETWORKS', message: (error as Error).message }]);
  }
  if (config.LISTEN_SOCKETS > 1 && !canReusePort) {
    throw new ConfigError([
      {
        variable: 'LISTEN_SOCKETS',
        message: `more than 1 needs SO_REUSEPORT from Node 22.12 or later on Linux; this is Node ${process.versions.node} on ${process.platform}`,
      },
    ]);
  }
  return config;
}
