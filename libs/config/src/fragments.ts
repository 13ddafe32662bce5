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
