import { ConfigError } from '@cxr/config';
import { DEFAULT_SUBMISSIONS_IN_FLIGHT, loadGatewayConfig } from './config';

const ADMIN_API_KEY = 'admin-key-that-is-at-least-32-characters';
const required = {
  AMQP_URL: 'amqp://u:p@localhost:5672/v',
  MONGODB_URI: 'mongodb://localhost:27017/',
  S3_ACCESS_KEY_ID: 'k',
  S3_SECRET_ACCESS_KEY: 's3-secret-value',
  ADMIN_API_KEY,
  WEBHOOK_SIGNING_KEY: 'webhook-signing-key-of-32-characters-or-more',
};

/** The ConfigError loadGatewayConfig throws for `source`. */
function refusal(source: Record<string, string | undefined>): ConfigError {
  try {
    loadGatewayConfig(source);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('loadGatewayConfig', () => {
  it('applies the documented defaults to everything not set', () => {
    expect(loadGatewayConfig(required)).toEqual({
      ...required,
      HOST: '127.0.0.1',
      PORT: 8080,
      LOG_LEVEL: 'info',
      MONGODB_DATABASE: 'cxr',
      S3_REGION: 'us-east-1',
      S3_BUCKET: 'cxr-classify',
      AUTH_CACHE_SECONDS: 5,
      METADATA_CACHE_SECONDS: 5,
      MAX_MODEL_BYTES: 200 * 1024 * 1024,
      MODEL_CHECK_TIMEOUT_SECONDS: 60,
      MAX_IMAGE_BYTES: 20 * 1024 * 1024,
      UPLOAD_MEMORY_BYTES: 4 * 1024 * 1024,
      WARM_UP_REQUESTS: 3000,
      LISTEN_SOCKETS: 16,
      BODY_IDLE_SECONDS: 30,
      HEADERS_TIMEOUT_SECONDS: 20,
      MAX_IMAGE_PIXELS: 50_000_000,
      MAX_IMAGE_DECODED_BYTES: 256 * 1024 * 1024,
      MAX_SUBMISSIONS_IN_FLIGHT: DEFAULT_SUBMISSIONS_IN_FLIGHT,
      RATIO_TOLERANCE: 0.01,
      RATE_LIMIT_PER_KEY: 6000,
      RATE_LIMIT_PER_IP: 12_000,
      RATE_LIMIT_WINDOW_SECONDS: 60,
      MAX_BACKLOG_SECONDS: 120,
      MAX_QUEUED_JOBS: 10_000,
      DRAIN_RATE_FLOOR: 1,
      PUBLISH_GRACE_SECONDS: 30,
      LEASE_SECONDS: 600,
      MAX_DISPATCHES: 3,
      DEAD_LETTER_GRACE_SECONDS: 60,
      DISPATCH_TOKEN_TTL_SECONDS: 86_400,
      TOKEN_RETENTION_SECONDS: 86_400,
      IMAGE_RETENTION_DAYS: 30,
      SWEEP_INTERVAL_SECONDS: 5,
      WEBHOOK_ALLOWED_NETWORKS: '',
      WEBHOOK_TIMEOUT_SECONDS: 10,
      WEBHOOK_RETRY_SECONDS: 86_400,
      WEBHOOK_BACKOFF_SECONDS: 10,
      WEBHOOK_BACKOFF_MAX_SECONDS: 3600,
      WEBHOOK_CONCURRENCY: 32,
    });
  });

  it('keeps values that were set, 0 included where 0 is allowed', () => {
    expect(
      loadGatewayConfig({
        ...required,
        PORT: '0',
        AUTH_CACHE_SECONDS: '0',
        IMAGE_RETENTION_DAYS: '0',
        RATIO_TOLERANCE: '0.05',
        BODY_IDLE_SECONDS: '110',
      }),
    ).toMatchObject({
      PORT: 0,
      AUTH_CACHE_SECONDS: 0,
      IMAGE_RETENTION_DAYS: 0,
      RATIO_TOLERANCE: 0.05,
      BODY_IDLE_SECONDS: 110,
    });
  });

  it.each([
    ['ADMIN_API_KEY'],
    ['WEBHOOK_SIGNING_KEY'],
    ['S3_SECRET_ACCESS_KEY'],
    ['S3_ACCESS_KEY_ID'],
    ['AMQP_URL'],
    ['MONGODB_URI'],
  ])('refuses to start without %s, unset or empty, and names it as required', (name) => {
    for (const value of [undefined, '']) {
      const error = refusal({ ...required, [name]: value });
      expect(error.issues).toEqual([{ variable: name, message: 'is required' }]);
      expect(error.message).toBe(`invalid configuration: ${name} is required`);
    }
  });

  it('refuses an admin key shorter than 32 characters without echoing it', () => {
    const error = refusal({ ...required, ADMIN_API_KEY: 'short-but-secret' });
    expect(error.issues).toEqual([
      { variable: 'ADMIN_API_KEY', message: 'expected string length greater or equal to 32 (at least 32 characters)' },
    ]);
    expect(error.message).not.toContain('short-but-secret');
  });

  it('refuses a webhook signing key shorter than 32 characters, and a malformed allowed network, naming them', () => {
    const error = refusal({ ...required, WEBHOOK_SIGNING_KEY: 'short-signing-key' });
    expect(error.issues.map((i) => i.variable)).toEqual(['WEBHOOK_SIGNING_KEY']);
    expect(error.message).not.toContain('short-signing-key');
    const networks = refusal({ ...required, WEBHOOK_ALLOWED_NETWORKS: '127.0.0.0/8,localhost' });
    expect(networks.issues).toEqual([
      {
        variable: 'WEBHOOK_ALLOWED_NETWORKS',
        message: "'localhost' is not a network in CIDR notation (e.g. 127.0.0.0/8 or fd00::/8)",
      },
    ]);
  });

  it.each([
    ['PORT', '8080.5'],
    ['AUTH_CACHE_SECONDS', '1e2'],
    ['MAX_IMAGE_BYTES', '20MB'],
    ['MAX_DISPATCHES', '3.0'],
    ['IMAGE_RETENTION_DAYS', '1.5'],
    ['SWEEP_INTERVAL_SECONDS', '0x5'],
  ])('refuses the non-integer %s=%s, naming it', (name, value) => {
    const error = refusal({ ...required, [name]: value });
    expect(error.issues.map((i) => i.variable)).toEqual([name]);
    expect(error.issues[0]!.message).toMatch(/^expected integer \(/);
  });

  it.each([
    ['PORT', '65536', 'less or equal to 65535'],
    ['AUTH_CACHE_SECONDS', '301', 'less or equal to 300'],
    ['METADATA_CACHE_SECONDS', '-1', 'greater or equal to 0'],
    ['MAX_MODEL_BYTES', '0', 'greater or equal to 1'],
    ['MODEL_CHECK_TIMEOUT_SECONDS', '3601', 'less or equal to 3600'],
    ['BODY_IDLE_SECONDS', '111', 'less or equal to 110'],
    ['UPLOAD_MEMORY_BYTES', '262143', 'greater or equal to 262144'],
    ['MAX_DISPATCHES', '21', 'less or equal to 20'],
    ['IMAGE_RETENTION_DAYS', '36501', 'less or equal to 36500'],
    ['RATIO_TOLERANCE', '0.51', 'less or equal to 0.5'],
    ['RATIO_TOLERANCE', '-0.1', 'greater or equal to 0'],
  ])('refuses %s=%s as out of range (%s), naming it', (name, value, bound) => {
    const error = refusal({ ...required, [name]: value });
    expect(error.issues.map((i) => i.variable)).toEqual([name]);
    expect(error.issues[0]!.message).toContain(bound);
  });

  it('refuses more than one listening socket where Node cannot bind them to one port, saying why', () => {
    expect(loadGatewayConfig({ ...required, LISTEN_SOCKETS: '4' }).LISTEN_SOCKETS).toBe(4);
    expect(loadGatewayConfig({ ...required, LISTEN_SOCKETS: '1' }, false).LISTEN_SOCKETS).toBe(1);
    expect(() => loadGatewayConfig({ ...required, LISTEN_SOCKETS: '4' }, false)).toThrow(
      /LISTEN_SOCKETS more than 1 needs SO_REUSEPORT from Node 22\.12 or later on Linux/,
    );
    expect(() => loadGatewayConfig({ ...required, LISTEN_SOCKETS: '65' })).toThrow(/LISTEN_SOCKETS/);
  });

  it('names every bad variable at once', () => {
    const error = refusal({ AMQP_URL: 'http://x', PORT: 'x', ADMIN_API_KEY: undefined });
    expect(error.issues.map((i) => i.variable).sort()).toEqual([
      'ADMIN_API_KEY',
      'AMQP_URL',
      'MONGODB_URI',
      'PORT',
      'S3_ACCESS_KEY_ID',
      'S3_SECRET_ACCESS_KEY',
      'WEBHOOK_SIGNING_KEY',
    ]);
  });
});
