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
});
