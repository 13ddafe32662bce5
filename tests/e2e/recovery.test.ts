import amqp from 'amqplib';
import { Topology } from '@cxr/broker';
import { renderSample, type SampleKind } from '@cxr/demo-model';
import { Types } from '@cxr/db';
import { slotOf } from '@cxr/request-lifecycle';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

interface View {
  state: string;
  result: { label: string } | null;
  errors: { code: string; message: string }[];
  dispatches: number;
  /** `started` reports recorded: a job taken again after its worker died shows 2 or more. */
  attempts: number;
}

async function setUp(system: System, name: string) {
  const user = (await createUser(new Client(system.gatewayUrl, system.adminKey), name)).client;
  return { user, ...(await datasetWithDemoModel(user, 'recovery', 'Recovery')) };
}

async function submitMany(user: Client, datasetId: string, count: number) {
  const kinds: SampleKind[] = ['dark', 'bright', 'striped'];
  const submitted: { id: string; kind: SampleKind }[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % 3]!;
    const response = await user.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample(kind, { seed: i })),
    );
    expect(response.status).toBe(202);
    submitted.push({ id: response.body.id as string, kind });
  }
  return submitted;
}

async function expectAllClassifiedOnce(system: System, user: Client, submitted: { id: string; kind: SampleKind }[]) {
  for (const { id, kind } of submitted) {
    const view = await user.get<View>(`/v1/classifications/${id}?wait=60`);
    expect({ id, state: view.body.state, label: view.body.result?.label }).toEqual({
      id,
      state: 'classified',
      label: kind,
    });
    expect(await system.db.models.ClassificationResult.countDocuments({ request: id })).toBe(1);
  }
}

describe('nothing is lost and nothing is recorded twice, whatever process dies', () => {
  describe('with all three services', () => {
    let system: System;
    let user: Client;
    let datasetId: string;

    beforeAll(async () => {
      system = await startSystem();
      ({ user, datasetId } = await setUp(system, 'frank'));
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('when an inference worker is killed mid-job, a new one finishes every request exactly once', async () => {
      await system.kill('inference');
      const submitted = await submitMany(user, datasetId, 12);
      // Jobs wait in the queue; the worker takes 4, reports them started, and holds them in a
      // batch that cannot fill (MAX_BATCH 8 > PREFETCH 4) for BATCH_WAIT_MS, a second: it is
      // mid-job, with nothing acked, when it dies.
      await system.start('inference', { PREFETCH: '4', MAX_BATCH: '8', BATCH_WAIT_MS: '1000' });
      await waitFor(
        'a request started by the first worker',
        () => system.db.models.ClassificationRequest.countDocuments({ state: 'assigned' }),
        (n) => n >= 1,
      );
      expect(await system.kill('inference', 'SIGKILL')).toBeNull();
      await system.start('inference');
      await expectAllClassifiedOnce(system, user, submitted);
      // The kill interrupted work: a job that was started is started again (not merely one that
      // was still waiting in the queue), and still recorded once (checked above).
      const attempts = await Promise.all(
        submitted.map(async ({ id }) => (await user.get<View>(`/v1/classifications/${id}`)).body.attempts),
      );
      expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
    });

    it('when the results consumer is killed, results wait in their queue and are recorded once after it returns', async () => {
      expect(await system.kill('results', 'SIGKILL')).toBeNull();
      const classified = async () => (await system.stats<{ classified: number }>('inference')).classified;
      // Counted before submitting: the worker may classify some before submitMany returns.
      const before = await classified();
      const submitted = await submitMany(user, datasetId, 6);
      await waitFor('the worker to classify the 6 new requests', classified, (n) => n >= before + 6);
      // The worker published a 'started' and a result for each (confirmed before it counted
      // them); with no consumer they are all still in the results queue.
      const connection = await amqp.connect(system.vhost.amqpUrl);
      try {
        const queue = await connection.createChannel().then((channel) => channel.checkQueue(Topology.resultsQueue));
        expect(queue).toMatchObject({ consumerCount: 0 });
        expect(queue.messageCount).toBeGreaterThanOrEqual(2 * submitted.length);
      } finally {
        await connection.close();
      }
      for (const { id } of submitted)
        expect((await user.get<View>(`/v1/classifications/${id}`)).body.state).not.toBe('classified');
      await system.start('results');
      await expectAllClassifiedOnce(system, user, submitted);
    });

    it('when the gateway dies between recording a request and publishing its job, the sweeper publishes it', async () => {
      const [template] = await submitMany(user, datasetId, 1);
      await user.get(`/v1/classifications/${template!.id}?wait=30`);
      const original = await system.db.models.ClassificationRequest.findById(template!.id).lean();
      // What a gateway that died right after its insert leaves behind: a request whose first job
      // was never published, with its publish timer due.
      const orphanId = new Types.ObjectId();
      const dueAt = new Date(Date.now() - 1000);
      await system.db.models.ClassificationRequest.collection.insertOne({
        ...original!,
        _id: orphanId,
        idempotency_key: null,
        state: 'accepted',
        dispatches: 1,
        tokens: [{ hash: 'f'.repeat(64), seq: 1, expires_at: new Date(Date.now() + 3_600_000) }],
        lapses: 0,
        attempts: 0,
        timer: { kind: 'publish', due_at: dueAt },
        due_slot: slotOf(dueAt),
        dispatched_at: new Date(Date.now() - 10_000),
        published_at: null,
        assigned_on: null,
        worker: null,
        completed_at: null,
        label: null,
        score: null,
        created_at: new Date(Date.now() - 10_000),
      });
      expect(await system.kill('gateway', 'SIGKILL')).toBeNull();
      await system.start('gateway');
      const view = await user.get<View>(`/v1/classifications/${String(orphanId)}?wait=30`);
      expect(view.body.state).toBe('classified');
      expect(view.body.result?.label).toBe(template!.kind);
      expect(await system.db.models.ClassificationResult.countDocuments({ request: orphanId })).toBe(1);
      // The sweeper made dispatch 2 with a token of its own; the first one never ran.
      expect(view.body.dispatches).toBe(2);
    });
  });

  describe('with a backlog no worker is taking yet', () => {
    let system: System;

    beforeAll(async () => {
      system = await startSystem(['gateway', 'results']);
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('leaves queued jobs alone however long they wait, then classifies each from its first dispatch', async () => {
      const { user, datasetId } = await setUp(system, 'ivan');
      const submitted = await submitMany(user, datasetId, 10);
      // Well past the publish grace (2 s): the sweeper has passed the slots of every request.
      const waitedUntil = slotOf(new Date(Date.now() + 8_000));
      // Throws if the sweeper has not got that far in 30 s.
      await waitFor(
        'the sweeper past the publish grace of every request',
        async () => (await system.db.models.TimerCursor.findById('timers').lean())?.slot ?? 0,
        (slot) => slot >= waitedUntil,
        30_000,
      );
      const connection = await amqp.connect(system.vhost.amqpUrl);
      const channel = await connection.createChannel();
      expect((await channel.checkQueue(Topology.jobsQueue)).messageCount).toBe(10);
      await connection.close();
      for (const { id } of submitted) {
        const view = await user.get<View>(`/v1/classifications/${id}`);
        expect({ id, state: view.body.state, dispatches: view.body.dispatches }).toEqual({
          id,
          state: 'queued',
          dispatches: 1,
        });
      }
      await system.start('inference');
      await expectAllClassifiedOnce(system, user, submitted);
      for (const { id } of submitted) {
        expect((await user.get<View>(`/v1/classifications/${id}`)).body.dispatches).toBe(1);
      }
    });
  });

  describe('with an image that cannot be processed', () => {
    let system: System;

    beforeAll(async () => {
      system = await startSystem(['gateway', 'results']);
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('fails the request with the reason, once, instead of retrying it', async () => {
      const { user, datasetId } = await setUp(system, 'heidi');
      const [submitted] = await submitMany(user, datasetId, 1);
      // The stored image is replaced behind the gateway's back before any worker sees it.
      const request = await system.db.models.ClassificationRequest.findById(submitted!.id).lean();
      await system.store.put(request!.image.key, Buffer.from('not the image that was checked'), {
        contentType: 'image/png',
      });
      await system.start('inference');
      const view = await user.get<View>(`/v1/classifications/${submitted!.id}?wait=30`);
      expect(view.body.state).toBe('failed');
      expect(view.body.errors).toEqual([
        { code: 'IMAGE_INTEGRITY', message: 'the stored image does not match its recorded sha256' },
      ]);
      const stats = await system.stats<{ failed: number; retried: number }>('inference');
      expect(stats).toMatchObject({ failed: 1, retried: 0 });
      expect(await system.db.models.ClassificationResult.countDocuments({ request: submitted!.id })).toBe(1);
    });

    it('accepts a truncated image from its header, then fails it IMAGE_CORRUPT once, as inference decodes it', async () => {
      const { user, datasetId } = await setUp(system, 'judy');
      // A worker of this test's own, whether or not the test before started one.
      await system.kill('inference');
      await system.start('inference');
      const whole = await renderSample('bright', { seed: 7 });
      const response = await user.post(
        `/v1/datasets/${datasetId}/classifications`,
        imageForm(whole.subarray(0, Math.floor(whole.length / 2))),
      );
      expect(response.status).toBe(202);
      const view = await user.get<View>(`/v1/classifications/${response.body.id as string}?wait=30`);
      expect(view.body.state).toBe('failed');
      expect(view.body.errors[0]?.code).toBe('IMAGE_CORRUPT');
      expect(view.body.errors[0]?.message).toMatch(/damaged or truncated/);
      expect(await system.db.models.ClassificationResult.countDocuments({ request: response.body.id })).toBe(1);
    });
  });

  describe('with a job that no worker can finish', () => {
    let system: System;

    beforeAll(async () => {
      system = await startSystem(['gateway', 'results']);
    });
    afterAll(async () => {
      await system?.stop();
    });

    it('dead-letters it after the delivery limit and fails its request with the reason, once', async () => {
      const { user, datasetId } = await setUp(system, 'grace');
      const [submitted] = await submitMany(user, datasetId, 1);
      // Workers that crash on the job: each takes it and gives it back unfinished.
      const connection = await amqp.connect(system.vhost.amqpUrl);
      const channel = await connection.createChannel();
      let deliveries = 0;
      await channel.consume(Topology.jobsQueue, (message) => {
        if (!message) return;
        deliveries += 1;
        channel.nack(message, false, true);
      });
      const view = await user.get<View>(`/v1/classifications/${submitted!.id}?wait=30`);
      await connection.close();
      expect(view.body.state).toBe('failed');
      expect(view.body.errors[0]?.code).toBe('DELIVERY_LIMIT');
      expect(view.body.errors[0]?.message).toMatch(/no worker could finish this job/);
      expect(deliveries).toBeGreaterThanOrEqual(3);
      expect(await system.db.models.ClassificationResult.countDocuments({ request: submitted!.id })).toBe(1);
    });
  });
});
