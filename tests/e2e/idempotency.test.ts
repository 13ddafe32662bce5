import amqp from 'amqplib';
import { Topology } from '@cxr/broker';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

describe('two submissions racing with the same Idempotency-Key make one request', () => {
  let system: System;
  let user: Client;
  let datasetId: string;

  beforeAll(async () => {
    // The gateway alone: the jobs it publishes stay in the queue, to be counted.
    system = await startSystem(['gateway']);
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'ida')).client;
    ({ datasetId } = await datasetWithDemoModel(user, 'racing', 'Racing'));
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('stores and dispatches each request once, and answers both submissions with its id', async () => {
    const keys = Array.from({ length: 5 }, (_, i) => `scan-race-${i}`);
    // Every pair at once: each key's two submissions race each other, and the pairs race too.
    const rounds = await Promise.all(
      keys.map(async (key, i) => {
        const image = await renderSample('striped', { seed: 100 + i });
        const submit = () =>
          user.post<{ id: string }>(`/v1/datasets/${datasetId}/classifications`, imageForm(image), {
            'idempotency-key': key,
          });
        const answers = await Promise.all([submit(), submit()]);
        return { key, answers };
      }),
    );

    const { ClassificationRequest, IdempotencyRecord } = system.db.models;
    for (const { key, answers } of rounds) {
      const stored = await ClassificationRequest.find({ idempotency_key: key }).lean();
      expect(stored).toHaveLength(1);
      const id = String(stored[0]!._id);
      // Whichever stored the request answers 202; the other finds it and answers 200.
      expect({ key, statuses: answers.map((a) => a.status).sort(), ids: answers.map((a) => a.body.id) }).toEqual({
        key,
        statuses: [200, 202],
        ids: [id, id],
      });
      expect(await IdempotencyRecord.countDocuments({ request: stored[0]!._id })).toBe(1);
    }

    // One job per request on the queue, not one per submission.
    const connection = await amqp.connect(system.vhost.amqpUrl);
    try {
      const channel = await connection.createChannel();
      expect((await channel.checkQueue(Topology.jobsQueue)).messageCount).toBe(keys.length);
    } finally {
      await connection.close();
    }
  });
});
