// Schema pieces shared by the services, so one variable has one name and one rule everywhere.
import { Type } from '@sinclair/typebox';

export const logLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
  { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' },
);

export const port = (defaultPort: number) =>
  Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort, description: 'a TCP port' });

export const host = Type.String({ minLength: 1, default: '127.0.0.1' });

export const amqpUrl = Type.String({
  pattern: '^amqps?://',
  description: 'an amqp:// or amqps:// URL with credentials and vhost',
});

export const mongoUri = Type.String({
  pattern: '^mongodb(\\+srv)?://',
  description: 'a mongodb:// URI',
});

export const databaseName = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,63}$',
  default: 'cxr',
  description: 'letters, digits, _ and -',
});

export const s3 = {
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://', description: 'an http(s) URL; unset means AWS S3' })),
  S3_REGION: Type.String({ minLength: 1, default: 'us-east-1' }),
  S3_ACCESS_KEY_ID: Type.String({ minLength: 1 }),
  S3_SECRET_ACCESS_KEY: Type.String({ minLength: 1 }),
  S3_BUCKET: Type.String({
    pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
    default: 'cxr-classify',
    description: 'an S3 bucket name',
  }),
};

export const positiveInt = (def: number, max = Number.MAX_SAFE_INTEGER) =>
  Type.Integer({ minimum: 1, maximum: max, default: def, description: `an integer from 1 to ${max}` });

/**
 * The request lifecycle's timing rules (see @cxr/request-lifecycle). The gateway and the results
 * service must run with the same values: both move requests through it.
 */
export const lifecycle = {
  /** A dispatch the broker has not confirmed after this long is made again (doubling, up to 5 min). */
  PUBLISH_GRACE_SECONDS: positiveInt(30, 3600),
  /** A job a worker started and did not finish in this long is dispatched again. Above the slowest job. */
  LEASE_SECONDS: positiveInt(600, 86_400),
  /** Leases that may lapse before the request fails with NOT_COMPLETED. */
  MAX_DISPATCHES: positiveInt(3, 20),
  /** A dead-lettered job fails its request after this long, so a result already on its way wins. */
  DEAD_LETTER_GRACE_SECONDS: positiveInt(60, 3600),
  /** How long a dispatch token is valid. */
  DISPATCH_TOKEN_TTL_SECONDS: positiveInt(86_400),
  /** Tokens and the Idempotency-Key record are deleted this long after the request ended. */
  TOKEN_RETENTION_SECONDS: positiveInt(86_400),
  /** The image (patient data) is deleted this many days after the request ended; 0 keeps it. */
  IMAGE_RETENTION_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36_500,
    default: 30,
    description: 'days, 0 keeps images',
  }),
};
