import { CxrApiError, CxrClient } from './cxr-client';

/** A fetch that answers from a script, one answer per call, and records what it was sent. */
function scripted(answers: { status: number; body: unknown; headers?: Record<string, string> }[]) {
  const calls: Request[] = [];
  const fetch = async (input: Request): Promise<Response> => {
    calls.push(input);
    const next = answers.shift();
    if (!next) throw new Error('no answer left in the script');
    return new Response(JSON.stringify(next.body), {
      status: next.status,
      headers: { 'content-type': 'application/json', ...next.headers },
    });
  };
  return { fetch, calls };
}

const overloaded = { status: 503, body: { error: 'OVERLOADED', message: 'busy' }, headers: { 'retry-after': '0' } };
const accepted = {
  status: 202,
  body: {
    id: 'r1',
    state: 'queued',
    created_at: '2026-11-28T00:00:00.000Z',
    links: { self: '/v1/classifications/r1' },
  },
};
const image = new Uint8Array([1, 2, 3]);

describe('CxrClient.classify when the gateway sheds load', () => {
  it('sends the submission again after Retry-After, with the same Idempotency-Key', async () => {
    const { fetch, calls } = scripted([
      overloaded,
      { ...overloaded, status: 429, body: { error: 'RATE_LIMITED', message: 'slow down' } },
      accepted,
    ]);
    const client = new CxrClient({ baseUrl: 'http://gateway', fetch });
    await expect(client.classify(image, { dataset: 'd1' })).resolves.toMatchObject({ id: 'r1' });
    expect(calls).toHaveLength(3);
    const keys = calls.map((c) => c.headers.get('idempotency-key'));
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^dataset-d1-[0-9a-f]{64}$/);
  });

  it('gives up after `retries`, with the refusal and its Retry-After', async () => {
    const { fetch, calls } = scripted([overloaded, overloaded]);
    const client = new CxrClient({ baseUrl: 'http://gateway', fetch });
    const refused = client.classify(image, { dataset: 'd1' }, { retries: 1 });
    await expect(refused).rejects.toBeInstanceOf(CxrApiError);
    await expect(refused).rejects.toMatchObject({ status: 503, code: 'OVERLOADED', retryAfterSeconds: 0 });
    expect(calls).toHaveLength(2);
  });

  it('does not send again what was refused for another reason', async () => {
    const { fetch, calls } = scripted([
      {
        status: 503,
        body: { error: 'UNAVAILABLE', message: 'the database is unreachable' },
        headers: { 'retry-after': '0' },
      },
    ]);
    const client = new CxrClient({ baseUrl: 'http://gateway', fetch });
    await expect(client.classify(image, { dataset: 'd1' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(calls).toHaveLength(1);
  });
});
