import { buildHealthApp } from './health-server';

describe('the probes', () => {
  let s3Up = true;
  const app = buildHealthApp(
    {
      rabbitmq: async () => undefined,
      s3: async () => {
        if (!s3Up) throw new Error('connect ECONNREFUSED 127.0.0.1:9000');
      },
    },
    () => ({ classified: 7 }),
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

  it('serves the counters at /stats', async () => {
    expect((await get('/stats')).body).toEqual({ classified: 7 });
  });
});
