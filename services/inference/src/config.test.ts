import { ConfigError } from '@cxr/config';
import { loadInferenceConfig } from './config';

const required = {
  AMQP_URL: 'amqp://u:p@localhost:5672/v',
  S3_ACCESS_KEY_ID: 'k',
  S3_SECRET_ACCESS_KEY: 's',
};

describe('loadInferenceConfig', () => {
  it('derives prefetch, intra-op threads and decode concurrency from the batch, the pool and the cores', () => {
    const cfg = loadInferenceConfig(required, 8);
    expect(cfg).toMatchObject({
      INFERENCE_THREADS: 1,
      INTRA_OP_THREADS: 8,
      MAX_BATCH: 8,
      BATCH_WAIT_MS: 5,
      PREFETCH: 16,
      // libuv's default pool of 4 leaves one thread for sockets and fs.
      PREPROCESS_CONCURRENCY: 3,
    });
    expect(loadInferenceConfig({ ...required, UV_THREADPOOL_SIZE: '16' }, 8).PREPROCESS_CONCURRENCY).toBe(8);
    expect(loadInferenceConfig(required, 2).PREPROCESS_CONCURRENCY).toBe(2);
    expect(loadInferenceConfig({ ...required, INFERENCE_THREADS: '3', MAX_BATCH: '4' }, 8)).toMatchObject({
      INTRA_OP_THREADS: 2,
      PREFETCH: 24,
    });
    // Never below one thread, whatever the split.
    expect(loadInferenceConfig({ ...required, INFERENCE_THREADS: '4' }, 2).INTRA_OP_THREADS).toBe(1);
  });

  it('keeps values that were set', () => {
    const cfg = loadInferenceConfig(
      { ...required, PREFETCH: '3', INTRA_OP_THREADS: '2', PREPROCESS_CONCURRENCY: '5', BATCH_WAIT_MS: '0' },
      8,
    );
    expect(cfg).toMatchObject({ PREFETCH: 3, INTRA_OP_THREADS: 2, PREPROCESS_CONCURRENCY: 5, BATCH_WAIT_MS: 0 });
  });

  it('names a bad value', () => {
    expect(() => loadInferenceConfig({ ...required, PREFETCH: '0' }, 2)).toThrow(ConfigError);
    expect(() => loadInferenceConfig({ ...required, PREFETCH: '0' }, 2)).toThrow(/PREFETCH/);
    expect(() => loadInferenceConfig({ ...required, MAX_BATCH: '0' }, 2)).toThrow(/MAX_BATCH/);
    expect(() => loadInferenceConfig({ ...required, BATCH_WAIT_MS: '-1' }, 2)).toThrow(/BATCH_WAIT_MS/);
  });

  it.each([['S3_SECRET_ACCESS_KEY'], ['S3_ACCESS_KEY_ID'], ['AMQP_URL']])(
    'refuses to start without %s, naming it as required',
    (name) => {
      expect(() => loadInferenceConfig({ ...required, [name]: '' }, 2)).toThrow(
        `invalid configuration: ${name} is required`,
      );
    },
  );

  it.each([
    ['MODEL_CACHE_SIZE', '1.5', /^invalid configuration: MODEL_CACHE_SIZE expected integer \(/],
    ['INFERENCE_THREADS', '2e0', /^invalid configuration: INFERENCE_THREADS expected integer \(/],
    ['PREFETCH', '16.0', /^invalid configuration: PREFETCH expected integer \(/],
    ['MODEL_CACHE_SIZE', '257', /MODEL_CACHE_SIZE expected integer to be less or equal to 256/],
    ['INFERENCE_THREADS', '65', /INFERENCE_THREADS expected integer to be less or equal to 64/],
    ['INTRA_OP_THREADS', '0', /INTRA_OP_THREADS expected integer to be greater or equal to 1/],
    ['BATCH_WAIT_MS', '1001', /BATCH_WAIT_MS expected integer to be less or equal to 1000/],
    ['PREPROCESS_CONCURRENCY', '65', /PREPROCESS_CONCURRENCY expected integer to be less or equal to 64/],
  ])('refuses %s=%s, naming it', (name, value, message) => {
    expect(() => loadInferenceConfig({ ...required, [name]: value }, 2)).toThrow(message);
  });

  it('applies the defaults of the settings it does not derive', () => {
    expect(loadInferenceConfig(required, 2)).toMatchObject({
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      HEALTH_PORT: 8081,
      S3_REGION: 'us-east-1',
      S3_BUCKET: 'cxr-classify',
      MODEL_CACHE_SIZE: 4,
      MAX_MODEL_BYTES: 200 * 1024 * 1024,
      MAX_IMAGE_BYTES: 20 * 1024 * 1024,
      MAX_IMAGE_PIXELS: 50_000_000,
    });
    expect(loadInferenceConfig(required, 2).WORKER_ID).toMatch(/-\d+$/);
  });
});
