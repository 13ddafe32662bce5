// A dependency that cannot be reached gives 503 with a code and a message that names it, not a
// 500 or a hang. The gateway reaches the database and the object store through TCP proxies of this
// file's own, which are cut and restored: the shared servers keep running for the other files.
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { stackEnv } from '../support/stack';
import { startSystem, type System } from '../support/system';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

/** The same URL with its port replaced. */
function throughPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
}

describe('a dependency the gateway cannot reach gives 503 naming it, and service returns with it', () => {
  let system: System;
  let s3: TcpProxy;
  let mongo: TcpProxy;
  let user: Client;
  let datasetId: string;
  let modelId: string;

  beforeAll(async () => {
    const env = stackEnv();
    s3 = await startTcpProxy(Number(new URL(env.s3.endpoint).port));
    mongo = await startTcpProxy(Number(new URL(env.mongoUri).port));
    system = await startSystem([]);
    await system.start('gateway', {
      S3_ENDPOINT: throughPort(env.s3.endpoint, s3.port).replace(/\/$/, ''),
      MONGODB_URI: throughPort(env.mongoUri, mongo.port),
    });
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'outages')).client;
    ({ datasetId, modelId } = await datasetWithDemoModel(user, 'outages', 'Outages'));
  });
  afterAll(async () => {
    await s3?.restore();
    await mongo?.restore();
    await system?.stop();
    await s3?.close();
    await mongo?.close();
  });

  it('answers 503 UNAVAILABLE naming the object store while S3 is unreachable, and 200 again once it is back', async () => {
    await s3.cut();
    try {
      const download = await user.get(`/v1/models/${modelId}/file`);
      expect({ status: download.status, body: download.body }).toMatchObject({
        status: 503,
        body: { error: 'UNAVAILABLE', message: 'the object store (S3) cannot be reached; try again shortly' },
      });
      const submission = await user.post(
        `/v1/datasets/${datasetId}/classifications`,
        imageForm(await renderSample('dark', { seed: 1 })),
      );
      expect({ status: submission.status, error: submission.body.error }).toEqual({
        status: 503,
        error: 'UNAVAILABLE',
      });
    } finally {
      await s3.restore();
    }
    expect((await user.get(`/v1/models/${modelId}/file`)).status).toBe(200);
  });

  it('answers 503 UNAVAILABLE naming the database while it is unreachable, and 200 again once it is back', async () => {
    await mongo.cut();
    try {
      const dataset = await user.get(`/v1/datasets/${datasetId}/models`);
      expect({ status: dataset.status, body: dataset.body }).toMatchObject({
        status: 503,
        body: { error: 'UNAVAILABLE', message: 'the database (MongoDB) cannot be reached; try again shortly' },
      });
    } finally {
      await mongo.restore();
    }
    await waitFor(
      'the gateway to read from the database again',
      async () => (await user.get(`/v1/datasets/${datasetId}/models`)).status,
      (status) => status === 200,
    );
  });
});
