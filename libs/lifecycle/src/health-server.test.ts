import { Counter, createRegistry } from '@cxr/metrics';
import { buildHealthApp } from './health-server';

describe('the probes', () => {
  let s3Up = true;
  const registry = createRegistry();
  const jobs = new Counter({ name: 'test_jobs_total', help: 'jobs', registers: [registry] });
  jobs.inc(7);
  const app = buildHealthApp(
    {
      rabbitmq: async () => undefined,
      s3: async () => {
        if (!s3Up) throw new Error('connect ECONNREFUSED 127.0.0.1:9000');
      },
    },
    registry,
    async () => ({ classified: (await jobs.get()).values[0]?.value }),
  );
  // Over a real socket: fastify's inject needs an ESM-only module jest does not load.
  let base = '';
  const get = async (url: string) => {
    const response = await fetch(`${base}${url}`);
    return { statusCode: response.status, body: await response.json() };
  };
  beforeAll(async () => {
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers ready (and health) 200 with every dependency up, and live 200', async () => {
    s3Up = true;
    for (const url of ['/ready', '/health']) {
      const response = await get(url);
      expect(response.statusCode).toBe(200);
      expect(response.body).toMatchObject({
        status: 'ok',
        dependencies: { rabbitmq: { up: true }, s3: { up: true } },
      });
    }
    expect((await get('/live')).body).toEqual({ status: 'live' });
  });

  it('answers ready 503 with the dependency that is down, while live stays 200', async () => {
    s3Up = false;
    const ready = await get('/ready');
    expect(ready.statusCode).toBe(503);
    expect(ready.body).toMatchObject({
      status: 'degraded',
      dependencies: { rabbitmq: { up: true }, s3: { up: false, error: 'connect ECONNREFUSED 127.0.0.1:9000' } },
    });
    expect((await get('/health')).statusCode).toBe(503);
    const live = await get('/live');
    expect(live.statusCode).toBe(200);
    expect(live.body).toEqual({ status: 'live' });
  });

  it('serves the counters at /stats, and the same counters with the process metrics at /metrics', async () => {
    expect((await get('/stats')).body).toEqual({ classified: 7 });
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    expect(text).toMatch(/^test_jobs_total 7$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
  });
});
