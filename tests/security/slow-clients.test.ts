import { connect, type Socket } from 'node:net';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

/** The gateway's HEADERS_TIMEOUT_SECONDS here (20 by default), so the test takes seconds, not minutes. */
const HEADERS_TIMEOUT_SECONDS = 5;

/** Slowloris connections held open at once. */
const SLOW_CLIENTS = 20;
/**
 * What the test gives the server to close them before it counts them as hung: the headers
 * timeout and the gateway's check interval (half of it), with ample room for a loaded machine.
 */
const CLIENT_PATIENCE_MS = 60_000;

interface SlowAnswer {
  status: number | null;
  closed: boolean;
}

/**
 * A slowloris client: a request line and then one header byte every few seconds, never ending
 * the headers. Resolves when the server closes the connection (with what it answered), or with
 * `closed: false` after CLIENT_PATIENCE_MS.
 */
function slowloris(url: string): { answer: Promise<SlowAnswer>; socket: Socket } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const answer = new Promise<SlowAnswer>((resolve) => {
    let received = '';
    const drip = setInterval(() => socket.write('a'), 500);
    const finish = (closed: boolean) => {
      clearInterval(drip);
      clearTimeout(patience);
      socket.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      resolve({ status: status ? Number(status) : null, closed });
    };
    const patience = setTimeout(() => finish(false), CLIENT_PATIENCE_MS);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.on('connect', () => socket.write(`POST /v1/datasets HTTP/1.1\r\nHost: ${hostname}\r\nX-Slow: `));
  });
  return { answer, socket };
}

describe('slow clients: a client that never finishes its headers is closed, and does not starve the others', () => {
  let system: System;

  beforeAll(async () => {
    system = await startSystem([]);
    await system.start('gateway', { HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_SECONDS) });
  });
  afterAll(async () => {
    await system?.stop();
  });

  it(`closes ${SLOW_CLIENTS} slowloris connections with a 408 within the headers timeout, answering others meanwhile`, async () => {
    const dave = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'dave')).client;
    const { datasetId } = await datasetWithDemoModel(dave, 'slow', 'Slow');
    const slow = Array.from({ length: SLOW_CLIENTS }, () => slowloris(system.gatewayUrl));
    // While they drip, the gateway serves everyone else: probes, reads and a submission.
    for (let i = 0; i < 5; i++) {
      expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
      expect((await dave.get(`/v1/datasets/${datasetId}`)).status).toBe(200);
    }
    const submitted = await dave.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('dark')),
    );
    expect(submitted.status).toBe(202);

    const answers = await Promise.all(slow.map((s) => s.answer));
    expect(answers).toEqual(Array.from({ length: SLOW_CLIENTS }, () => ({ status: 408, closed: true })));
    expect((await fetch(system.healthUrl('gateway'))).status).toBe(200);
  });
});
