import { decodeMessage, encodeMessage, JobMessage, ResultMessage } from './messages';
import { newDispatchToken } from './dispatch-token';

const job: JobMessage = {
  v: 1,
  type: 'cxr.job',
  requestId: '65a1b2c3d4e5f6a7b8c9d0e1',
  correlationId: 'corr-1',
  dispatchToken: newDispatchToken(),
  dispatchedAt: new Date().toISOString(),
  model: {
    id: '65a1b2c3d4e5f6a7b8c9d0e2',
    key: 'models/x.onnx',
    sha256: 'a'.repeat(64),
    size: 10,
    labels: ['a', 'b'],
    inputSpec: { layout: 'NCHW', channels: 1, width: 64, height: 64, mean: [0], std: [1], output: 'auto' },
  },
  image: { key: 'images/x.png', sha256: 'b'.repeat(64), size: 5, format: 'png' },
  keepAspectRatio: true,
};

describe('decodeMessage', () => {
  it('accepts what encodeMessage produced', () => {
    expect(decodeMessage(JobMessage, encodeMessage(job))).toEqual({ ok: true, value: job });
  });

  it('refuses non-JSON with a reason instead of throwing', () => {
    const decoded = decodeMessage(JobMessage, Buffer.from('{nope'));
    expect(decoded.ok).toBe(false);
    expect(!decoded.ok && decoded.reason).toMatch(/not JSON/);
  });

  it('refuses an unknown version', () => {
    const decoded = decodeMessage(JobMessage, Buffer.from(JSON.stringify({ ...job, v: 2 })));
    expect(!decoded.ok && decoded.reason).toMatch(/version 2/);
  });

  it('names the field that is wrong', () => {
    const bad = { ...job, image: { ...job.image, sha256: 'xyz' } };
    const decoded = decodeMessage(JobMessage, Buffer.from(JSON.stringify(bad)));
    expect(!decoded.ok && decoded.reason).toMatch(/\/image\/sha256/);
  });

  it('refuses a result whose token is malformed', () => {
    const result: ResultMessage = {
      v: 1,
      type: 'cxr.result',
      requestId: job.requestId,
      correlationId: 'c',
      dispatchToken: 'short',
      outcome: 'started',
      worker: 'w',
      modelId: job.model.id,
      at: new Date().toISOString(),
      errors: [],
      timings: {},
    };
    expect(decodeMessage(ResultMessage, encodeMessage(result)).ok).toBe(false);
    expect(decodeMessage(ResultMessage, encodeMessage({ ...result, dispatchToken: job.dispatchToken })).ok).toBe(true);
  });

  it('accepts timings with the batch an image ran in, and nothing unknown', () => {
    const result: ResultMessage = {
      v: 1,
      type: 'cxr.result',
      requestId: job.requestId,
      correlationId: 'c',
      dispatchToken: job.dispatchToken,
      outcome: 'failed',
      worker: 'w',
      modelId: job.model.id,
      at: new Date().toISOString(),
      errors: [{ code: 'INFERENCE_FAILED', message: 'x' }],
      timings: { preprocessMs: 3.5, inferenceMs: 40, batchSize: 8 },
    };
    expect(decodeMessage(ResultMessage, encodeMessage(result)).ok).toBe(true);
    const fractional = { ...result, timings: { batchSize: 1.5 } };
    expect(decodeMessage(ResultMessage, encodeMessage(fractional)).ok).toBe(false);
    const unknown = { ...result, timings: { threads: 2 } } as unknown as ResultMessage;
    expect(decodeMessage(ResultMessage, encodeMessage(unknown)).ok).toBe(false);
  });

  it('bounds a classification: labels of at most 128 characters, at most 10000 scores', () => {
    const classified = (label: string, scores: { label: string; score: number }[]): ResultMessage => ({
      v: 1,
      type: 'cxr.result',
      requestId: job.requestId,
      correlationId: 'c',
      dispatchToken: job.dispatchToken,
      outcome: 'classified',
      worker: 'w',
      modelId: job.model.id,
      at: new Date().toISOString(),
      classification: { label, score: 1, scores },
      errors: [],
      timings: {},
    });
    const decode = (m: ResultMessage) => decodeMessage(ResultMessage, encodeMessage(m));
    expect(decode(classified('a', [{ label: 'a', score: 1 }])).ok).toBe(true);
    const long = 'x'.repeat(129);
    expect(decode(classified(long, [{ label: 'a', score: 1 }]))).toMatchObject({ ok: false });
    expect(decode(classified('a', [{ label: long, score: 1 }]))).toMatchObject({ ok: false });
    expect(decode(classified('', [{ label: 'a', score: 1 }]))).toMatchObject({ ok: false });
    const many = Array.from({ length: 10001 }, (_, i) => ({ label: `l${i}`, score: 0 }));
    const decoded = decode(classified('l0', many));
    expect(!decoded.ok && decoded.reason).toMatch(/\/classification\/scores/);
  });
});
