// @cxr/client against the real system: typed calls through `api`, a model upload, and classify()
// with its idempotency key (the same image twice is one request) and its waiting.
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import { CxrApiError, CxrClient, succeed, type ClassificationRequest } from '@cxr/client';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

describe('the typed client', () => {
  let system: System;
  let cxr: CxrClient;
  let datasetId: string;
  let modelId: string;

  beforeAll(async () => {
    system = await startSystem();
    const admin = new CxrClient({ baseUrl: system.gatewayUrl, apiKey: system.adminKey });
    const created = await succeed(admin.api.POST('/v1/users', { body: { username: 'client-user' } }));
    cxr = new CxrClient({ baseUrl: `${system.gatewayUrl}/`, apiKey: created.api_key.key });
    const dataset = await succeed(
      cxr.api.POST('/v1/datasets', {
        body: { name: 'client', display_name: 'Client', img_width: 64, img_height: 64 },
      }),
    );
    datasetId = dataset.id;
    const demo = buildDemoModel();
    const model = await cxr.uploadModel(datasetId, {
      file: demo.onnx,
      labels: [...demo.labels],
      inputSpec: { ...demo.inputSpec, output: 'auto' },
      name: 'demo',
    });
    modelId = model.id;
    expect(model).toMatchObject({ dataset: datasetId, is_default: true, labels: [...demo.labels] });
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('classifies an image and waits for its outcome; the same image again is the same request', async () => {
    const image = await renderSample('bright', { width: 64, height: 64, seed: 11 });
    const first: ClassificationRequest = await cxr.classify(image, { dataset: datasetId }, { wait: 30 });
    expect(first).toMatchObject({ state: 'classified', dataset: datasetId, model: modelId });
    expect(first.result?.scores.map((s) => s.label).sort()).toEqual(['bright', 'dark', 'striped']);

    const again = await cxr.classify(new Blob([image]), { dataset: datasetId }, { wait: 30 });
    expect(again.id).toBe(first.id);
    const { ClassificationRequest: Requests } = system.db.models;
    expect(await Requests.countDocuments({ dataset: datasetId })).toBe(1);
  });

  it('answers the submission without wait, and waitFor() follows it to its end', async () => {
    const image = await renderSample('striped', { width: 128, height: 128, seed: 12 });
    const submitted = await cxr.classify(image, { model: modelId }, { priority: 5 });
    expect(submitted.links.self).toBe(`/v1/classifications/${submitted.id}`);
    const ended = await cxr.waitFor(submitted.id, 30);
    expect(ended).toMatchObject({ id: submitted.id, state: 'classified', priority: 5 });
    // Without a key, the same image again is another request.
    const another = await cxr.classify(image, { model: modelId }, { idempotencyKey: false });
    expect(another.id).not.toBe(submitted.id);
  });

  it("rejects with the API's error code when the API refuses", async () => {
    const small = await renderSample('dark', { width: 32, height: 32, seed: 13 });
    await expect(cxr.classify(small, { dataset: datasetId }, { wait: 5 })).rejects.toMatchObject({
      name: 'CxrApiError',
      status: 422,
      code: 'IMAGE_RULES',
    });
    const demo = buildDemoModel();
    const refused = cxr.uploadModel(datasetId, {
      file: demo.onnx,
      labels: ['only-one'],
      inputSpec: { ...demo.inputSpec, output: 'auto' },
    });
    await expect(refused).rejects.toBeInstanceOf(CxrApiError);
    await expect(refused).rejects.toMatchObject({ status: 422, code: 'LABELS_MISMATCH' });
    const missing = succeed(cxr.api.GET('/v1/models/{id}', { params: { path: { id: '0'.repeat(24) } } }));
    await expect(missing).rejects.toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });
});
