import { randomBytes, randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { RESULT_ROUTING_KEY, Topology } from '@cxr/broker';
import { encodeMessage, type JobMessage, type ResultMessage } from '@cxr/contracts';
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { classifiedResult, takeJob as takeJobFrom } from '../support/jobs';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

/**
 * No inference service runs here: the test takes the job from the queue itself, as a worker
 * would, so it holds the real dispatch token, and plays both an honest and a hostile worker.
 */
describe('the results consumer records a result only with the right, unused dispatch token', () => {
  let system: System;
  let carol: Client;
  let connection: amqp.ChannelModel;
  let channel: amqp.ConfirmChannel;
  let job: JobMessage;

  async function publishResult(message: ResultMessage): Promise<void> {
    channel.publish(Topology.resultsExchange, RESULT_ROUTING_KEY, encodeMessage(message), {
      persistent: true,
      messageId: randomUUID(),
    });
    await channel.waitForConfirms();
  }

  async function resultsStats(): Promise<{ recorded: number; refused: Record<string, number> }> {
    return system.stats<{ recorded: number; refused: Record<string, number> }>('results');
  }

  const takeJob = () => takeJobFrom(channel);

  const resultFor = (token: string, label: string) => classifiedResult(job, token, label);

  beforeAll(async () => {
    system = await startSystem(['gateway', 'results']);
    carol = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'carol')).client;
    const { datasetId } = await datasetWithDemoModel(carol, 'tokens', 'Tokens');
    const submitted = await carol.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('dark')),
    );
    expect(submitted.status).toBe(202);

    connection = await amqp.connect(system.vhost.amqpUrl);
    channel = await connection.createConfirmChannel();
    job = await takeJob();
    expect(job.requestId).toBe(submitted.body.id);
  });
  afterAll(async () => {
    await connection?.close();
    await system?.stop();
  });

  it('refuses a result with a made-up token and records nothing', async () => {
    await publishResult(resultFor(randomBytes(32).toString('base64url'), 'bright'));
    const stats = await waitFor('the forged result refused', resultsStats, (s) => s.refused.forged! >= 1);
    expect(stats.refused.forged).toBe(1);
    expect(await system.db.models.ClassificationResult.countDocuments({})).toBe(0);
    const view = await carol.get(`/v1/classifications/${job.requestId}`);
    expect(view.body.state).toBe('queued');
  });

  it("refuses a genuine token carrying labels that are not the model's, and records nothing", async () => {
    const hostile = '<img src=x onerror=alert(1)>';
    await publishResult(resultFor(job.dispatchToken, hostile));
    // A known label, but scores that are not the model's labels.
    const scores = resultFor(job.dispatchToken, 'dark');
    scores.classification!.scores = [{ label: hostile, score: 1 }];
    await publishResult(scores);
    const stats = await waitFor('both mislabelled results refused', resultsStats, (s) => s.refused.mislabelled! >= 2);
    expect(stats.refused.mislabelled).toBe(2);
    expect(stats.recorded).toBe(0);
    expect(await system.db.models.ClassificationResult.countDocuments({})).toBe(0);
    const view = await carol.get(`/v1/classifications/${job.requestId}`);
    expect(view.body.state).toBe('queued');
  });

  /** The honest worker's answer ('dark', with the job's token), sent unless it is recorded already. */
  async function recordHonestResult(): Promise<{ state: string; result: { label: string } | null }> {
    const path = `/v1/classifications/${job.requestId}`;
    const now = await carol.get<{ state: string; result: { label: string } | null }>(path);
    if (now.body.result) return now.body;
    await publishResult(resultFor(job.dispatchToken, 'dark'));
    return (await carol.get<{ state: string; result: { label: string } | null }>(`${path}?wait=15`)).body;
  }

  it('records the result that carries the job token', async () => {
    const view = await recordHonestResult();
    expect(view.state).toBe('classified');
    expect(view.result?.label).toBe('dark');
  });

  it('refuses the same token replayed with another answer, leaving the result unchanged', async () => {
    // The token has been used: by the test before, or here when this test runs alone.
    expect((await recordHonestResult()).state).toBe('classified');
    await publishResult(resultFor(job.dispatchToken, 'striped'));
    const stats = await waitFor('the replayed result refused', resultsStats, (s) => s.refused.replayed! >= 1);
    expect(stats.refused.replayed).toBe(1);
    expect(stats.recorded).toBe(1);
    const results = await system.db.models.ClassificationResult.find({ request: job.requestId }).lean();
    expect(results).toHaveLength(1);
    expect(results[0]!.classification?.label).toBe('dark');
  });

  it('refuses a token that has expired', async () => {
    const { ClassificationRequest } = system.db.models;
    // A second dispatch of another request whose token is already past its expiry.
    const submitted = await carol.post(
      `/v1/models/${job.model.id}/classifications`,
      imageForm(await renderSample('bright')),
    );
    const next = await takeJob();
    const stored = (await ClassificationRequest.findById(submitted.body.id).lean())!;
    await ClassificationRequest.updateOne(
      { _id: stored._id },
      { $set: { tokens: stored.tokens.map((t) => ({ ...t, expires_at: new Date(Date.now() - 1000) })) } },
    );
    job = next;
    await publishResult(resultFor(job.dispatchToken, 'bright'));
    const stats = await waitFor('the stale result refused', resultsStats, (s) => s.refused.stale! >= 1);
    expect(stats.refused.stale).toBe(1);
    expect(await system.db.models.ClassificationResult.countDocuments({ request: submitted.body.id })).toBe(0);
  });

  it('sends a malformed result to the invalid queue with the reason', async () => {
    channel.publish(Topology.resultsExchange, RESULT_ROUTING_KEY, Buffer.from('{"v":1,"type":"cxr.result"}'), {
      persistent: true,
    });
    await channel.waitForConfirms();
    const dead = await waitFor(
      'the malformed result in the invalid queue',
      () => channel.get(Topology.invalidQueue, { noAck: true }),
      (m): m is amqp.GetMessage => m !== false,
    );
    expect(String(dead.properties.headers?.['x-cxr-reason'])).toMatch(/requestId|required/i);
  });
});
