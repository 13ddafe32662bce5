import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type ServiceName, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

type LogLine = Record<string, unknown> & { msg?: string; trace_id?: string; request_id?: string };

describe('one request is followed by its trace id from the gateway through inference to results', () => {
  let system: System;
  let user: Client;
  let datasetId: string;

  const logLines = (name: ServiceName): LogLine[] =>
    readFileSync(join(system.logDir, `${name}.log`), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  const submit = async (headers: Record<string, string>) =>
    fetch(`${system.gatewayUrl}/v1/datasets/${datasetId}/classifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.apiKey}`, ...headers },
      body: imageForm(await renderSample('dark', { width: 96, height: 96, seed: 5 })),
    });

  beforeAll(async () => {
    system = await startSystem();
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'tracy')).client;
    ({ datasetId } = await datasetWithDemoModel(user, 'traced', 'Traced'));
  });
  afterAll(async () => {
    await system?.stop();
  });

  it("carries the client's traceparent into every log line of the work, in each service", async () => {
    const traceId = randomBytes(16).toString('hex');
    const response = await submit({
      traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
      'x-request-id': 'client-chosen.id-1',
    });
    expect(response.status).toBe(202);
    expect(response.headers.get('x-request-id')).toBe('client-chosen.id-1');
    const { id } = (await response.json()) as { id: string };
    expect((await user.get<{ state: string }>(`/v1/classifications/${id}?wait=30`)).body.state).toBe('classified');

    const ofTrace = (name: ServiceName) => logLines(name).filter((line) => line.trace_id === traceId);
    const results = await waitFor(
      'the result recorded under the trace id',
      () => ofTrace('results'),
      (lines) => lines.some((l) => l.msg === 'result recorded'),
      10_000,
    );
    expect(results.every((l) => l.requestId === id)).toBe(true);
    // Its own pipe and log file: it may come after the results service's line.
    const inference = await waitFor(
      'the job classified under the trace id',
      () => ofTrace('inference'),
      (lines) => lines.some((l) => l.msg === 'job classified'),
      10_000,
    );
    expect(inference.every((l) => l.requestId === id)).toBe(true);
    // The gateway's line of the request (one, when it is answered) carries it too, with the
    // request id the client chose, its method, route and status.
    const gateway = ofTrace('gateway');
    expect(gateway.find((l) => l.msg === 'request completed')).toMatchObject({
      req: { method: 'POST', url: `/v1/datasets/${datasetId}/classifications` },
      res: { statusCode: 202 },
    });
    expect(gateway.every((l) => l.request_id === 'client-chosen.id-1')).toBe(true);
    // No other request's lines share it.
    expect(logLines('gateway').filter((l) => l.request_id === 'client-chosen.id-1')).toEqual(gateway);
  });

  it('starts a trace and a request id of its own when the client sends none, or unusable ones', async () => {
    const response = await submit({ traceparent: 'not-a-traceparent', 'x-request-id': 'has spaces and "quotes"' });
    expect(response.status).toBe(202);
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const { id } = (await response.json()) as { id: string };
    await user.get(`/v1/classifications/${id}?wait=30`);
    const gateway = logLines('gateway').filter((l) => l.request_id === requestId);
    const traceId = gateway[0]?.trace_id;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const recorded = await waitFor(
      'the result recorded',
      () => logLines('results').filter((l) => l.requestId === id && l.msg === 'result recorded'),
      (lines) => lines.length === 1,
      10_000,
    );
    expect(recorded[0]!.trace_id).toBe(traceId);
  });

  it('answers a 5xx with the request id that finds its log line, in the header and the body', async () => {
    // The gateway's bucket disappears behind its back: storing the upload fails with an error it does not expect.
    await system.store.destroyBucket();
    const response = await submit({});
    expect(response.status).toBeGreaterThanOrEqual(500);
    const body = (await response.json()) as { error: string; request_id?: string };
    const requestId = response.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    expect(body.request_id).toBe(requestId);
    const errors = await waitFor(
      'the error logged under the request id',
      () => logLines('gateway').filter((l) => l.request_id === requestId && Number(l.level) >= 50),
      (lines) => lines.length > 0,
      10_000,
    );
    expect(errors[0]!.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });
});
