import { buildDemoModel, renderSample, type SampleKind } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

interface RequestView {
  id: string;
  state: string;
  result: { label: string; score: number; scores: { label: string; score: number }[] } | null;
  errors: { code: string; message: string }[];
  model: string;
  timings: Record<string, number>;
}

describe('a user classifies chest X-rays through gateway, inference and results', () => {
  let system: System;
  let alice: Client;

  beforeAll(async () => {
    system = await startSystem();
    alice = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'alice')).client;
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('reports every dependency up on /health of each service', async () => {
    for (const name of ['gateway', 'inference', 'results'] as const) {
      const response = await fetch(system.healthUrl(name));
      const body = (await response.json()) as { status: string; dependencies: Record<string, { up: boolean }> };
      expect(response.status).toBe(200);
      expect(body.status).toBe('ok');
      for (const dep of Object.values(body.dependencies)) expect(dep.up).toBe(true);
    }
  });

  it('refuses calls without a valid key', async () => {
    const anonymous = new Client(system.gatewayUrl);
    expect((await anonymous.get('/v1/datasets')).status).toBe(401);
    const forged = anonymous.withKey(`cxr_${'0'.repeat(16)}_${'A'.repeat(43)}`);
    const response = await forged.get('/v1/datasets');
    expect(response.status).toBe(401);
    expect(response.body.message).toMatch(/not valid/);
  });

  it('creates a dataset and uploads the demo model, which becomes the default', async () => {
    const dataset = await alice.post('/v1/datasets', {
      name: 'synthetic-cxr',
      display_name: 'Synthetic chest X-rays',
      img_width: 128,
      img_height: 128,
      maintain_ratio: true,
    });
    expect(dataset.status).toBe(201);
    const datasetId = dataset.body.id as string;

    const demo = buildDemoModel();
    const upload = await alice.post(
      `/v1/datasets/${datasetId}/models`,
      modelForm(demo.onnx, demo.labels, demo.inputSpec),
    );
    expect(upload.status).toBe(201);
    expect(upload.body).toMatchObject({
      version: 1,
      status: 'active',
      is_default: true,
      labels: demo.labels,
      size: demo.onnx.length,
    });
    const modelId = upload.body.id as string;

    const download = await fetch(`${system.gatewayUrl}/v1/models/${modelId}/file`, {
      headers: { authorization: `Bearer ${alice.apiKey}` },
    });
    expect(Buffer.from(await download.arrayBuffer()).equals(demo.onnx)).toBe(true);
  });

  // Each test below has a dataset of its own with the demo model, so it runs alone as well.
  it('classifies each kind of sample with its label, exactly once', async () => {
    const { datasetId, modelId } = await datasetWithDemoModel(alice, 'each-kind', 'Each kind');
    const kinds: SampleKind[] = ['dark', 'bright', 'striped'];
    const submitted: { kind: SampleKind; id: string }[] = [];
    for (const kind of kinds) {
      const image = await renderSample(kind, { width: 256, height: 256, seed: 7 });
      const response = await alice.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image));
      expect(response.status).toBe(202);
      expect(response.body.state).toBe('queued');
      submitted.push({ kind, id: response.body.id as string });
    }
    for (const { kind, id } of submitted) {
      const view = await alice.get<RequestView>(`/v1/classifications/${id}?wait=30`);
      expect(view.status).toBe(200);
      expect(view.body.state).toBe('classified');
      expect(view.body.result?.label).toBe(kind);
      expect(view.body.result?.scores.map((s) => s.label)).toEqual(['dark', 'bright', 'striped']);
      expect(view.body.result!.scores.reduce((a, s) => a + s.score, 0)).toBeCloseTo(1, 4);
      expect(view.body.model).toBe(modelId);
      expect(view.body.timings.inferenceMs).toBeGreaterThanOrEqual(0);
      // The demo model's batch is dynamic: these three may have run together, and say so.
      expect(view.body.timings.batchSize).toBeGreaterThanOrEqual(1);
      expect(view.body.timings.batchSize).toBeLessThanOrEqual(3);
    }
    const { ClassificationRequest, ClassificationResult } = system.db.models;
    for (const { id } of submitted) {
      expect(await ClassificationResult.countDocuments({ request: id })).toBe(1);
      const { tokens } = (await ClassificationRequest.findById(id).lean())!;
      expect(tokens).toHaveLength(1);
      // Only the hash is stored, and the result names the token it came with.
      expect(tokens[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
      expect((await ClassificationResult.findById(id).lean())!.dispatch_token).toBe(tokens[0]!.hash);
    }
  });

  it('classifies a JPEG sent to a chosen model, and lists requests with filters', async () => {
    const { datasetId, modelId } = await datasetWithDemoModel(alice, 'listing', 'Listing');
    // Three classified before it, so the listing has two pages of two.
    for (const seed of [1, 2, 3]) {
      const earlier = await alice.post(
        `/v1/datasets/${datasetId}/classifications`,
        imageForm(await renderSample('dark', { seed })),
      );
      expect(
        (await alice.get<RequestView>(`/v1/classifications/${earlier.body.id as string}?wait=30`)).body.state,
      ).toBe('classified');
    }
    const image = await renderSample('striped', { width: 300, height: 300, format: 'jpeg', seed: 3 });
    const sent = await fetch(`${system.gatewayUrl}/v1/models/${modelId}/classifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.apiKey!}` },
      body: imageForm(image, 'x.jpg'),
    });
    const response = { status: sent.status, body: (await sent.json()) as { id: string } };
    expect(response.status).toBe(202);
    expect(sent.headers.get('location')).toBe(`/v1/classifications/${response.body.id}`);
    // Where the submission's time went in the gateway, stage by stage, in milliseconds.
    const stages = (sent.headers.get('server-timing') ?? '').split(', ').map((entry) => entry.split(';dur='));
    expect(stages.map(([name]) => name)).toEqual(['auth', 'lookup', 'upload', 'check', 'store', 'record']);
    for (const [, ms] of stages) expect(Number(ms)).toBeGreaterThanOrEqual(0);
    const view = await alice.get<RequestView>(`/v1/classifications/${response.body.id}?wait=30`);
    expect(view.body.result?.label).toBe('striped');

    const list = await alice.get<{ items: { id: string; state: string; label: string }[] }>(
      `/v1/classifications?dataset=${datasetId}&state=classified&limit=2`,
    );
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(2);
    expect(list.body.items[0]!.id).toBe(response.body.id);
    expect(list.body.items[0]!.label).toBe('striped');
    const next = (list.body as unknown as { next: string }).next;
    expect(next).toBe(list.body.items[1]!.id);
    const second = await alice.get<{ items: { id: string }[] }>(
      `/v1/classifications?dataset=${datasetId}&state=classified&limit=2&before=${next}`,
    );
    expect(second.body.items).toHaveLength(2);
    expect(second.body.items.map((i) => i.id)).not.toContain(list.body.items[0]!.id);
    expect(second.body.items.map((i) => i.id)).not.toContain(next);
  });

  it('serves other kinds of classifier: fixed batch, logits, NHWC with three channels, another input size', async () => {
    const variant = buildDemoModel({
      fixedBatch: true,
      output: 'logits',
      layout: 'NHWC',
      channels: 3,
      width: 96,
      height: 96,
    });
    const { datasetId } = await datasetWithDemoModel(alice, 'variants', 'Variants');
    expect(variant.inputSpec).toMatchObject({ layout: 'NHWC', channels: 3, width: 96, height: 96, output: 'logits' });
    const upload = await alice.post(
      `/v1/datasets/${datasetId}/models`,
      modelForm(variant.onnx, variant.labels, variant.inputSpec, 'nhwc-logits'),
    );
    expect(upload.status).toBe(201);
    expect(upload.body).toMatchObject({ version: 2, is_default: false });
    for (const kind of ['dark', 'bright', 'striped'] as const) {
      const image = await renderSample(kind, { width: 200, height: 200, seed: 5, format: 'jpeg' });
      const submitted = await alice.post(
        `/v1/models/${upload.body.id as string}/classifications`,
        imageForm(image, 'x.jpg'),
      );
      const view = await alice.get<RequestView>(`/v1/classifications/${submitted.body.id as string}?wait=30`);
      expect(view.body.result?.label).toBe(kind);
      // Logits went through softmax: the scores are a distribution.
      expect(view.body.result!.scores.reduce((a, s) => a + s.score, 0)).toBeCloseTo(1, 4);
    }
  });

  it('answers the same request again for a repeated Idempotency-Key', async () => {
    const { datasetId } = await datasetWithDemoModel(alice, 'repeats', 'Repeats');
    const image = await renderSample('dark', { seed: 11 });
    const first = await alice.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image), {
      'idempotency-key': 'scan-42',
    });
    const second = await alice.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image), {
      'idempotency-key': 'scan-42',
    });
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const other = await alice.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('bright', { seed: 11 })),
      { 'idempotency-key': 'scan-42' },
    );
    expect(other.status).toBe(409);
    expect(other.body.message).toMatch(/already used for another image/);
    // The callback is part of what was asked: another URL under the same key is not a repeat.
    const rehooked = await alice.post(
      `/v1/datasets/${datasetId}/classifications?callback_url=${encodeURIComponent('http://127.0.0.1:9/hook')}`,
      imageForm(image),
      { 'idempotency-key': 'scan-42' },
    );
    expect(rehooked.status).toBe(409);
    expect(rehooked.body.message).toMatch(/callback_url/);
  });

  it('publishes an OpenAPI document of the API', async () => {
    const doc = await alice.get<{ openapi: string; paths: Record<string, unknown> }>('/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/v1/datasets', '/v1/datasets/{id}/models', '/v1/classifications/{id}']),
    );
  });

  it('sends the next submission to a new default at once, and refuses a model as soon as it is retired', async () => {
    // Its own dataset: submissions cache datasets and models, and each change must clear that.
    const { datasetId: id, modelId: firstId } = await datasetWithDemoModel(
      alice,
      'switching-models',
      'Switching models',
    );
    const demo = buildDemoModel();
    const second = await alice.post(`/v1/datasets/${id}/models`, modelForm(demo.onnx, demo.labels, demo.inputSpec));
    expect(second.status).toBe(201);
    const secondId = second.body.id as string;
    const image = await renderSample('dark', { seed: 21 });
    const modelOf = async (submitted: { body: Record<string, unknown> }) =>
      (await alice.get<RequestView>(`/v1/classifications/${submitted.body.id as string}`)).body.model;

    expect(await modelOf(await alice.post(`/v1/datasets/${id}/classifications`, imageForm(image)))).toBe(firstId);
    expect((await alice.put(`/v1/datasets/${id}/default-model`, { model_id: secondId })).status).toBe(200);
    expect(await modelOf(await alice.post(`/v1/datasets/${id}/classifications`, imageForm(image)))).toBe(secondId);

    expect((await alice.post(`/v1/models/${firstId}/classifications`, imageForm(image))).status).toBe(202);
    expect((await alice.post(`/v1/models/${firstId}/retire`)).status).toBe(200);
    const refused = await alice.post(`/v1/models/${firstId}/classifications`, imageForm(image));
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/retired/);
  });

  it('refuses an image over MAX_IMAGE_BYTES with 413 and stores nothing for it', async () => {
    const { datasetId } = await datasetWithDemoModel(alice, 'huge', 'Huge');
    const before = await system.db.models.ClassificationRequest.countDocuments({});
    // A PNG signature, then more than the default limit of 20 MiB.
    const huge = Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      Buffer.alloc(21 * 1024 * 1024),
    ]);
    const response = await alice.post(`/v1/datasets/${datasetId}/classifications`, imageForm(huge));
    expect(response.status).toBe(413);
    expect(response.body.message).toMatch(/larger than the limit of 20971520 bytes/);
    expect(await system.db.models.ClassificationRequest.countDocuments({})).toBe(before);
  });
});
