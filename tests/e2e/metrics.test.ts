import { renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { scrape, valueOf, type Sample } from '../support/metrics';
import { startSystem, type ServiceName, type System } from '../support/system';
import { waitFor } from '../support/wait';

jest.setTimeout(120_000);

const SUBMIT = { method: 'POST', route: '/v1/datasets/:id/classifications', status_code: '202' };

describe('each service serves its metrics at /metrics, and a classification moves them', () => {
  let system: System;
  let user: Client;
  let datasetId: string;

  beforeAll(async () => {
    system = await startSystem();
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'mona')).client;
    ({ datasetId } = await datasetWithDemoModel(user, 'metered', 'Metered'));
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('shows the process and event-loop metrics on every service', async () => {
    for (const name of ['gateway', 'inference', 'results'] as const) {
      const samples = await scrape(system, name);
      expect(samples.some((s) => s.name === 'process_cpu_seconds_total')).toBe(true);
      expect(samples.some((s) => s.name === 'nodejs_eventloop_lag_p99_seconds')).toBe(true);
    }
  });

  it('counts one classification in each service: submitted, classified, recorded with its latency', async () => {
    const before = {
      gateway: await scrape(system, 'gateway'),
      inference: await scrape(system, 'inference'),
      results: await scrape(system, 'results'),
    };
    const image = await renderSample('bright', { width: 128, height: 128, seed: 11 });
    const submitted = await user.post<{ id: string }>(`/v1/datasets/${datasetId}/classifications`, imageForm(image));
    expect(submitted.status).toBe(202);
    const view = await user.get<{ state: string }>(`/v1/classifications/${submitted.body.id}?wait=30`);
    expect(view.body.state).toBe('classified');

    // Each service counts once its own work is done, which may be just after the client heard.
    const moved = async (name: ServiceName, series: [string, Record<string, string>][]) => {
      const changes = (after: Sample[]) =>
        series.map(([metric, labels]) => valueOf(after, metric, labels) - valueOf(before[name], metric, labels));
      return changes(
        await waitFor(
          `${name} metrics to move`,
          () => scrape(system, name),
          (after) => changes(after).every((d) => d > 0),
          10_000,
        ),
      );
    };
    expect(
      await moved('gateway', [
        ['cxr_gateway_http_request_duration_seconds_count', SUBMIT],
        ['cxr_gateway_submissions_total', { outcome: 'accepted' }],
      ]),
    ).toEqual([1, 1]);
    expect(
      await moved('inference', [
        ['cxr_inference_jobs_total', { outcome: 'classified' }],
        ['cxr_inference_preprocess_seconds_count', {}],
        ['cxr_inference_batch_size_count', {}],
      ]),
    ).toEqual([1, 1, 1]);
    expect(
      await moved('results', [
        ['cxr_results_recorded_total', { outcome: 'classified' }],
        ['cxr_results_end_to_end_seconds_count', { outcome: 'classified' }],
        ['cxr_results_started_total', {}],
      ]),
    ).toEqual([1, 1, 1]);

    // The latency lands in the histogram's buckets: at most 30 s (the wait above), more than 0.
    const results = await scrape(system, 'results');
    const e2e = { outcome: 'classified' };
    expect(valueOf(results, 'cxr_results_end_to_end_seconds_sum', e2e)).toBeGreaterThan(0);
    expect(valueOf(results, 'cxr_results_end_to_end_seconds_bucket', { ...e2e, le: '30' })).toBe(
      valueOf(results, 'cxr_results_end_to_end_seconds_count', e2e),
    );
    // /stats shows the same counters.
    const stats = await system.stats<{ recorded: number; refused: Record<string, number> }>('results');
    expect(stats.recorded).toBe(valueOf(results, 'cxr_results_recorded_total'));
    expect(stats.refused.forged).toBe(0);
    const inference = await system.stats<{ classified: number }>('inference');
    expect(inference.classified).toBe(
      valueOf(await scrape(system, 'inference'), 'cxr_inference_jobs_total', { outcome: 'classified' }),
    );
  });

  it('labels the route with its pattern, never the URL, and an unknown path as unmatched', async () => {
    const missing = `/v1/classifications/${'f'.repeat(24)}`;
    expect((await user.get(missing)).status).toBe(404);
    expect((await fetch(`${system.gatewayUrl}/no/such/${Date.now()}`)).status).toBe(404);
    const samples = await waitFor(
      'the 404s counted',
      () => scrape(system, 'gateway'),
      (s) => valueOf(s, 'cxr_gateway_http_request_duration_seconds_count', { route: 'unmatched' }) >= 1,
      10_000,
    );
    const routes = new Set(samples.filter((s) => s.name.startsWith('cxr_gateway_http')).map((s) => s.labels.route));
    expect(routes).toContain('/v1/classifications/:id');
    expect([...routes].filter((r) => r && /[0-9a-f]{24}|\/no\/such/.test(r))).toEqual([]);
  });
});
