import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { SubmissionGate, type Shed } from './admission';
import { BacklogMonitor } from './shedding';
import { requestIdOf } from '../tracing';

/** A server with the gate's listener in front of `next`, which holds every request it is given until released. */
async function serve(gate: SubmissionGate) {
  const held: ServerResponse[] = [];
  const sheds: { shed: Shed; route: string }[] = [];
  let closing = false;
  // The tests send one request at a time: the one under way is told when `next` holds it.
  let onHeld: (() => void) | undefined;
  const next = (request: IncomingMessage, response: ServerResponse) => {
    // What the router's hook does for a request the listener passed: admitted already, so admitted again.
    if (request.method === 'POST' && /\/classifications(\?|$)/.test(request.url ?? '')) {
      expect(gate.admit(request, response)).toBeNull();
    }
    request.resume();
    held.push(response);
    onHeld?.();
  };
  const server: Server = createServer(
    gate.listener(
      next,
      requestIdOf,
      (shed, route) => sheds.push({ shed, route }),
      () => closing,
    ),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const send = (path: string, method = 'POST', headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string } | 'held'>((resolve, reject) => {
      onHeld = () => resolve('held');
      const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, agent: false });
      req.on('response', (response) => {
        let body = '';
        response.on('data', (piece: Buffer) => (body += piece.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      });
      req.on('error', reject);
      req.end(method === 'GET' ? undefined : 'x');
    });
  return {
    send,
    held,
    sheds,
    startClosing: () => (closing = true),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('SubmissionGate', () => {
  let app: Awaited<ReturnType<typeof serve>>;
  afterEach(() => app.close());

  it('takes maxInFlight submissions, answers the next 503 before the router, and counts it', async () => {
    app = await serve(new SubmissionGate(2, undefined));
    expect(await app.send('/v1/datasets/d1/classifications')).toBe('held');
    expect(await app.send('/v1/models/m1/classifications?wait=5')).toBe('held');
    const shed = await app.send('/v1/models/m1/classifications', 'POST', { 'x-request-id': 'client-id' });
    expect(shed).toMatchObject({
      status: 503,
      headers: { 'retry-after': '1', 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'client-id' },
    });
    expect(shed !== 'held' && JSON.parse(shed.body)).toEqual({
      error: 'OVERLOADED',
      message: 'this gateway is taking 2 submissions already; retry in 1 s',
    });
    expect(app.sheds).toEqual([
      {
        shed: expect.objectContaining({ reason: 'shed_in_flight' }) as unknown,
        route: '/v1/models/:id/classifications',
      },
    ]);
    // Not submissions: passed on whatever the count.
    expect(await app.send('/v1/classifications', 'GET')).toBe('held');
    expect(await app.send('/v1/datasets/d1/classifications', 'GET')).toBe('held');
    expect(await app.send('/v1/datasets/d1/classifications/x')).toBe('held');
    expect(app.held).toHaveLength(5);
  });

  it('frees a slot when an admitted exchange closes, however it ends', async () => {
    app = await serve(new SubmissionGate(1, undefined));
    expect(await app.send('/v1/datasets/d1/classifications')).toBe('held');
    expect(await app.send('/v1/datasets/d1/classifications')).toMatchObject({ status: 503 });
    app.held[0]!.end();
    expect(await app.send('/v1/datasets/d1/classifications')).toBe('held');
    app.held[1]!.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await app.send('/v1/datasets/d1/classifications')).toBe('held');
    expect(app.sheds).toHaveLength(1);
  });

  it('sheds by the backlog with its Retry-After, and closes the connection while the server closes', async () => {
    const backlog = new BacklogMonitor(async () => 10, {
      maxBacklogSeconds: 2,
      maxQueuedJobs: 0,
      drainRateFloor: 1,
      maxRetryAfterSeconds: 300,
    });
    await backlog.sample();
    app = await serve(new SubmissionGate(0, backlog));
    app.startClosing();
    const shed = await app.send('/v1/datasets/d1/classifications');
    expect(shed).toMatchObject({ status: 503, headers: { 'retry-after': '9', connection: 'close' } });
    // No X-Request-Id sent: one made up.
    expect(shed !== 'held' && shed.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(shed !== 'held' && shed.body).toMatch(/retry in 9 s/);
    expect(app.sheds[0]?.shed.reason).toBe('shed_backlog');
  });
});
