// Model uploads through the gateway: concurrent uploads to one dataset, and the model check's
// time limit (MODEL_CHECK_TIMEOUT_SECONDS) on a model that cannot run once within it.
import { buildDemoModel, encodeModel, TensorDataType } from '@cxr/demo-model';
import { Client, createUser, modelForm } from '@cxr/client';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

const SPEC = { layout: 'NCHW', channels: 1, width: 64, height: 64, mean: [0], std: [1] };

/**
 * A valid classifier ([1,1,64,64] in, 2 scores out) whose one run takes minutes: the image tiled
 * to 4096×4096, multiplied by itself 8 times (over 10^12 floating-point operations on the one
 * thread the check gives it), then two values sliced out.
 */
function slowModel(): Buffer {
  const products = Array.from({ length: 8 }, (_, i) => ({
    opType: 'MatMul',
    inputs: [i === 0 ? 'tiled' : `product${i - 1}`, 'tiled'],
    outputs: [`product${i}`],
  }));
  return encodeModel({
    opsetImports: [{ domain: '', version: 13 }],
    graph: {
      name: 'slow',
      nodes: [
        { opType: 'Reshape', inputs: ['input', 'square'], outputs: ['plane'] },
        { opType: 'Tile', inputs: ['plane', 'repeats'], outputs: ['tiled'] },
        ...products,
        { opType: 'Slice', inputs: ['product7', 'starts', 'ends'], outputs: ['scores'] },
      ],
      initializers: [
        { name: 'square', dataType: 'int64', dims: [2], data: [64, 64] },
        { name: 'repeats', dataType: 'int64', dims: [2], data: [64, 64] },
        { name: 'starts', dataType: 'int64', dims: [2], data: [0, 0] },
        { name: 'ends', dataType: 'int64', dims: [2], data: [1, 2] },
      ],
      inputs: [{ name: 'input', elemType: TensorDataType.FLOAT, shape: [1, 1, 64, 64] }],
      outputs: [{ name: 'scores', elemType: TensorDataType.FLOAT, shape: [1, 2] }],
    },
  });
}

async function newDataset(user: Client, name: string): Promise<string> {
  const dataset = await user.post('/v1/datasets', { name, display_name: name, img_width: 64, img_height: 64 });
  expect(dataset.status).toBe(201);
  return dataset.body.id as string;
}

describe('model uploads', () => {
  let system: System;
  let admin: Client;

  beforeAll(async () => {
    system = await startSystem(['gateway']);
    admin = new Client(system.gatewayUrl, system.adminKey);
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('gives concurrent uploads to one dataset distinct versions (or a 409), never a duplicate or a 500', async () => {
    const user = (await createUser(admin, 'racing-uploads')).client;
    const datasetId = await newDataset(user, 'racing');
    const demo = buildDemoModel();
    const uploads = await Promise.all(
      Array.from({ length: 4 }, () =>
        user.post(`/v1/datasets/${datasetId}/models`, modelForm(demo.onnx, demo.labels, demo.inputSpec)),
      ),
    );
    const created = uploads.filter((u) => u.status === 201);
    for (const refused of uploads.filter((u) => u.status !== 201)) {
      expect({ status: refused.status, error: refused.body.error }).toEqual({ status: 409, error: 'CONFLICT' });
    }
    const versions = created.map((u) => u.body.version as number).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: created.length }, (_, i) => i + 1));
    const listed = await user.get<{ items: { version: number }[] }>(`/v1/datasets/${datasetId}/models`);
    expect(listed.body.items.map((m) => m.version).sort((a, b) => a - b)).toEqual(versions);
  });

  describe('with MODEL_CHECK_TIMEOUT_SECONDS=1', () => {
    beforeAll(async () => {
      await system.kill('gateway');
      await system.start('gateway', { MODEL_CHECK_TIMEOUT_SECONDS: '1' });
    });

    it('refuses a model whose check runs longer with 422 MODEL_CHECK_TIMEOUT, and stores nothing', async () => {
      const user = (await createUser(admin, 'slow-model')).client;
      const datasetId = await newDataset(user, 'slow');
      const upload = await user.post(`/v1/datasets/${datasetId}/models`, modelForm(slowModel(), ['a', 'b'], SPEC));
      expect({ status: upload.status, body: upload.body }).toMatchObject({
        status: 422,
        body: { error: 'MODEL_CHECK_TIMEOUT', message: 'the model did not load and run once within 1 s' },
      });
      expect((await user.get<{ items: unknown[] }>(`/v1/datasets/${datasetId}/models`)).body.items).toEqual([]);
      expect(await system.store.listKeys(`models/${datasetId}/`)).toEqual([]);
    });
  });
});
