// Stopping a service (SIGTERM) while it has work in hand: an inference worker mid-job, a gateway
// with ?wait long-polls open. Nothing is lost, nothing hangs, and the process exits 0.
import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(180_000);

interface View {
  state: string;
  result: { label: string } | null;
}

async function submit(user: Client, datasetId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let seed = 0; seed < count; seed++) {
    const response = await user.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('dark', { seed })),
    );
    expect(response.status).toBe(202);
    ids.push(response.body.id as string);
  }
  return ids;
}

describe('a service stopped with SIGTERM while it has work in hand', () => {
  let system: System;
  let user: Client;
  let datasetId: string;

  beforeAll(async () => {
    system = await startSystem(['gateway', 'results']);
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'shutdown')).client;
    ({ datasetId } = await datasetWithDemoModel(user, 'shutdown', 'Shutdown'));
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('an inference worker mid-job exits 0, and its jobs are finished or taken again, each recorded once', async () => {
    const ids = await submit(user, datasetId, 3);
    // The worker takes the 3 jobs, reports them started, and holds them in a batch that cannot
    // fill (MAX_BATCH 8 > 3 jobs) for BATCH_WAIT_MS: it is mid-job, nothing acked, when stopped.
    await system.start('inference', { PREFETCH: '4', MAX_BATCH: '8', BATCH_WAIT_MS: '1000' });
    await waitFor(
      'the worker to start a job',
      () => system.db.models.ClassificationRequest.countDocuments({ _id: { $in: ids }, state: 'assigned' }),
      (n) => n >= 1,
    );
    expect(await system.kill('inference', 'SIGTERM')).toBe(0);
    expect(system.logs('inference')).toMatch(/inference stopped/);
    // Whatever it had not finished went back to the queue: a new worker takes it.
    await system.start('inference');
    for (const id of ids) {
      const view = await user.get<View>(`/v1/classifications/${id}?wait=60`);
      expect({ id, state: view.body.state, label: view.body.result?.label }).toEqual({
        id,
        state: 'classified',
        label: 'dark',
      });
      expect(await system.db.models.ClassificationResult.countDocuments({ request: id })).toBe(1);
    }
    await system.kill('inference');
  });

  it('a gateway with ?wait long-polls open answers each with the state it has, then exits 0', async () => {
    // No worker: the requests stay queued, so each long-poll would hold its full 60 s.
    await system.kill('inference');
    // Its "incoming request" lines (debug) show when the long-polls have arrived.
    await system.kill('gateway');
    await system.start('gateway', { LOG_LEVEL: 'debug' });
    const ids = await submit(user, datasetId, 3);
    const polls = ids.map((id) => user.get<View>(`/v1/classifications/${id}?wait=60`));
    await waitFor(
      'the gateway to receive the 3 long-polls',
      async () => system.logs('gateway'),
      (log) => ids.every((id) => log.includes(`"url":"/v1/classifications/${id}?wait=60"`)),
    );
    const exited = system.kill('gateway', 'SIGTERM');
    // Each poll is answered by the closing gateway (its deadline is 60 s away), not cut off.
    const answers = await Promise.all(polls);
    for (const answer of answers)
      expect({ status: answer.status, state: answer.body.state }).toEqual({ status: 200, state: 'queued' });
    expect(await exited).toBe(0);
    expect(system.logs('gateway')).toMatch(/gateway stopped/);
    await system.start('gateway');
    expect((await user.get<View>(`/v1/classifications/${ids[0]!}`)).body.state).toBe('queued');
  });
});
