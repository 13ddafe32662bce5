import { request as httpRequest } from 'node:http';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { Topology } from '@cxr/broker';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rate limits: a client over its limit gets 429 with Retry-After; health checks never do', () => {
  let system: System;
  let admin: Client;

  beforeAll(async () => {
    system = await startSystem([]);
    await system.start('gateway', {
      RATE_LIMIT_PER_KEY: '4',
      RATE_LIMIT_PER_IP: '10',
      RATE_LIMIT_WINDOW_SECONDS: '60',
    });
    admin = new Client(system.gatewayUrl, system.adminKey);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('refuses the request past the per-key limit, then the one past the per-IP limit', async () => {
    const bob = (await createUser(admin, 'bob')).client;
    const carol = (await createUser(admin, 'carol')).client;
    const get = (client: Client) =>
      fetch(`${system.gatewayUrl}/v1/datasets`, { headers: { authorization: `Bearer ${client.apiKey}` } });

    // 2 requests from this IP so far; bob's key has made none.
    for (let i = 1; i <= 4; i++) {
      const ok = await get(bob);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit-limit')).toBe('4');
      expect(ok.headers.get('ratelimit-remaining')).toBe(String(4 - i));
      expect(Number(ok.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    const refused = await get(bob);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-limit')).toBe('4');
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    const body = (await refused.json()) as { error: string; message: string };
    expect(body.error).toBe('RATE_LIMITED');
    expect(body.message).toMatch(/retry in \d+ s/);

    // Health checks are not counted nor limited.
    for (let i = 0; i < 12; i++) expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);

    // 7 requests from this IP: carol's 3 more reach its limit of 10, her key's limit of 4 untouched.
    for (let i = 0; i < 3; i++) expect((await get(carol)).status).toBe(200);
    const perIp = await get(carol);
    expect(perIp.status).toBe(429);
    expect(perIp.headers.get('ratelimit-limit')).toBe('10');
    expect(Number(perIp.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await perIp.json()).toMatchObject({ error: 'RATE_LIMITED' });

    // The admin counters are exempt too.
    expect((await admin.get('/stats')).status).toBe(200);
    expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
  });
});

describe('backlog shedding: with no worker, submissions beyond the backlog get 503 with Retry-After', () => {
  let system: System;
  let bob: Client;
  let datasetId: string;
  let image: Buffer;

  beforeAll(async () => {
    system = await startSystem([]);
    await system.start('gateway', { MAX_QUEUED_JOBS: '3', MAX_BACKLOG_SECONDS: '0' });
    bob = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'bob')).client;
    ({ datasetId } = await datasetWithDemoModel(bob, 'chest', 'Chest'));
    image = await renderSample('dark', { width: 64, height: 64, seed: 1 });
  });
  afterAll(async () => {
    await system?.stop();
  });

  const submit = () => bob.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image));

  /** Submits until one is shed (a queue sample may lag a submission by a second). */
  async function submitUntilShed(): Promise<{ accepted: number; shed: Response }> {
    let accepted = 0;
    for (let attempt = 0; attempt < 20; attempt++) {
      const response = await fetch(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob.apiKey}` },
        body: imageForm(image),
      });
      if (response.status === 503) return { accepted, shed: response };
      expect(response.status).toBe(202);
      accepted += 1;
      await sleep(300);
    }
    throw new Error('never shed');
  }

  /** Submits (no worker takes them) until at least `count` jobs wait in the queue. */
  async function queueAtLeast(count: number): Promise<void> {
    const connection = await amqp.connect(system.vhost.amqpUrl);
    try {
      const channel = await connection.createChannel();
      const depth = async () => (await channel.checkQueue(Topology.jobsQueue)).messageCount;
      while ((await depth()) < count) expect((await submit()).status).toBe(202);
    } finally {
      await connection.close();
    }
  }

  it('refuses submissions past MAX_QUEUED_JOBS, while /health answers 200', async () => {
    for (let i = 0; i < 3; i++) expect((await submit()).status).toBe(202);
    const { accepted, shed } = await submitUntilShed();
    expect(accepted).toBeLessThanOrEqual(2);
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = (await shed.json()) as { error: string; message: string };
    expect(body.error).toBe('OVERLOADED');
    expect(body.message).toMatch(/retry in \d+ s/);
    expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
    // Reading is not shed.
    expect((await bob.get('/v1/classifications')).status).toBe(200);
  });

  it('answers before reading the upload', async () => {
    // The gateway is shedding: the queue is past MAX_QUEUED_JOBS and it has sampled it.
    await submitUntilShed();
    // Headers and a little of a large body; the rest never comes, and the answer comes anyway.
    const status = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve, reject) => {
      const boundary = randomBytes(8).toString('hex');
      const req = httpRequest(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bob.apiKey}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(10 * 1024 * 1024),
        },
      });
      req.on('response', (response) => {
        resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] });
        response.resume();
        req.destroy();
      });
      req.on('error', reject);
      req.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n`);
    });
    expect(status.status).toBe(503);
    expect(Number(status.retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('sheds on a cold start with a deep queue, by MAX_BACKLOG_SECONDS at the drain-rate floor', async () => {
    await queueAtLeast(3);
    await system.kill('gateway');
    // At least 3 jobs wait; at 1 job/s assumed, 2 s of backlog is 2 jobs.
    await system.start('gateway', { MAX_QUEUED_JOBS: '0', MAX_BACKLOG_SECONDS: '2', DRAIN_RATE_FLOOR: '1' });
    const { accepted, shed } = await submitUntilShed();
    expect(accepted).toBeLessThanOrEqual(1);
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await shed.json()).toMatchObject({ error: 'OVERLOADED' });
    expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
  });

  it('refuses a submission past MAX_SUBMISSIONS_IN_FLIGHT at once, and takes one again when a slot is free', async () => {
    await system.kill('gateway');
    await system.start('gateway', { MAX_QUEUED_JOBS: '0', MAX_BACKLOG_SECONDS: '0', MAX_SUBMISSIONS_IN_FLIGHT: '1' });
    // One upload holds the only slot: its headers and the start of its body, the rest withheld.
    const boundary = randomBytes(8).toString('hex');
    const held = httpRequest(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${bob.apiKey}`,
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(1024 * 1024),
      },
    });
    held.on('error', () => undefined);
    held.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n`);
    // Its headers reach the gateway soon; until then a submission may still be taken.
    await waitFor(
      'the held upload to take the slot',
      async () => (await submit()).status,
      (status) => status === 503,
    );
    const refused = await fetch(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob.apiKey}` },
      body: imageForm(image),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    const body = (await refused.json()) as { error: string; message: string };
    expect(body.error).toBe('OVERLOADED');
    expect(body.message).toMatch(/taking 1 submissions already; retry in 1 s/);
    // A path the router decodes to a submission route is held to the same count.
    const encoded = await fetch(`${system.gatewayUrl}/v1/%64atasets/${datasetId}/classifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bob.apiKey}` },
      body: imageForm(image),
    });
    expect(encoded.status).toBe(503);
    expect(((await encoded.json()) as { error: string }).error).toBe('OVERLOADED');
    expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
    // The client gives up: its slot is freed.
    held.destroy();
    const taken = await waitFor(
      'a submission to be taken again',
      () =>
        fetch(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
          method: 'POST',
          headers: { authorization: `Bearer ${bob.apiKey}` },
          body: imageForm(image),
        }),
      (answer) => answer.status === 202,
    );
    // Shed answers are counted, not logged one by one (a flood would cost a log line each);
    // the others are.
    const loggedIds = (
      await waitFor(
        'the accepted submission logged',
        async () => system.logs('gateway'),
        (log) => log.includes(taken.headers.get('x-request-id')!),
      )
    )
      .split('\n')
      .filter((line) => line.includes('"msg":"request completed"'))
      .map((line) => (JSON.parse(line) as { request_id: string }).request_id);
    expect(loggedIds).toContain(taken.headers.get('x-request-id'));
    expect(loggedIds).not.toContain(refused.headers.get('x-request-id'));
  });

  it('does not shed with shedding off', async () => {
    await system.kill('gateway');
    await system.start('gateway', { MAX_QUEUED_JOBS: '0', MAX_BACKLOG_SECONDS: '0' });
    expect((await submit()).status).toBe(202);
  });
});
