import sharp from 'sharp';
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

describe('bad input gets a 4xx that says what is wrong and leaves nothing behind', () => {
  let system: System;
  let bob: Client;
  let datasetId: string;
  const demo = buildDemoModel();

  beforeAll(async () => {
    system = await startSystem(['gateway']);
    bob = (await createUser(new Client(system.gatewayUrl, system.adminKey), 'bob')).client;
    const dataset = await bob.post('/v1/datasets', {
      name: 'wide',
      display_name: 'Wide views',
      img_width: 200,
      img_height: 100,
      maintain_ratio: true,
    });
    datasetId = dataset.body.id as string;
  });
  afterAll(async () => {
    await system?.stop();
  });

  async function nothingStored(): Promise<void> {
    expect(await system.db.models.ClassifierModel.countDocuments({})).toBe(0);
    expect(await system.store.listKeys('models/')).toEqual([]);
  }

  describe('model uploads', () => {
    it('refuses a file that is not ONNX', async () => {
      const response = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(Buffer.from('just some text, not a model'), demo.labels, demo.inputSpec),
      );
      expect(response.status).toBe(422);
      expect(response.body).toMatchObject({ error: 'MODEL_NOT_LOADABLE' });
      expect(response.body.message).toMatch(/not a model ONNX Runtime can load/);
      await nothingStored();
    });

    it('refuses labels that do not match the output size', async () => {
      const response = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(demo.onnx, ['normal', 'covid'], demo.inputSpec),
      );
      expect(response.status).toBe(422);
      expect(response.body.error).toBe('LABELS_MISMATCH');
      expect(response.body.message).toMatch(/3 value\(s\) per image .* but 2 label\(s\)/);
      await nothingStored();
    });

    it('refuses an input spec the model does not accept', async () => {
      const response = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(demo.onnx, demo.labels, { ...demo.inputSpec, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] }),
      );
      expect(response.status).toBe(422);
      expect(response.body.error).toBe('MODEL_INPUT_SHAPE');
      await nothingStored();
    });

    it('refuses missing or malformed fields', async () => {
      const noLabels = new FormData();
      noLabels.append('input_spec', JSON.stringify(demo.inputSpec));
      noLabels.append('file', new Blob([demo.onnx]), 'm.onnx');
      const r1 = await bob.post(`/v1/datasets/${datasetId}/models`, noLabels);
      expect(r1.status).toBe(400);
      expect(r1.body.message).toMatch(/'labels' is required/);

      const r2 = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(demo.onnx, 'normal,covid', demo.inputSpec),
      );
      expect(r2.status).toBe(400);
      expect(r2.body.message).toMatch(/JSON array/);

      const r3 = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(demo.onnx, demo.labels, { ...demo.inputSpec, layout: 'CHW' }),
      );
      expect(r3.status).toBe(400);
      expect(r3.body.message).toMatch(/input_spec\/layout/);
      await nothingStored();
    });

    it('refuses to classify on a dataset that has no model yet', async () => {
      const image = await renderSample('dark', { width: 200, height: 100 });
      const response = await bob.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image));
      expect(response.status).toBe(409);
      expect(response.body.message).toMatch(/no model yet/);
    });
  });

  describe('images', () => {
    beforeAll(async () => {
      const upload = await bob.post(
        `/v1/datasets/${datasetId}/models`,
        modelForm(demo.onnx, demo.labels, demo.inputSpec),
      );
      expect(upload.status).toBe(201);
    });

    async function submit(bytes: Buffer, filename = 'x.png') {
      return bob.post(`/v1/datasets/${datasetId}/classifications`, imageForm(bytes, filename));
    }

    async function noRequests(): Promise<void> {
      expect(await system.db.models.ClassificationRequest.countDocuments({})).toBe(0);
      expect(await system.store.listKeys('images/')).toEqual([]);
    }

    it('refuses an image below the dataset minimum size', async () => {
      const response = await submit(await renderSample('dark', { width: 100, height: 50 }));
      expect(response.status).toBe(422);
      expect(response.body.message).toMatch(/image is 100x50; this dataset needs at least 200x100/);
      await noRequests();
    });

    it('refuses an image off the dataset ratio', async () => {
      const response = await submit(await renderSample('dark', { width: 300, height: 300 }));
      expect(response.status).toBe(422);
      expect(response.body.message).toMatch(/differs from this dataset's 200:100/);
      // The tolerance it was checked with is the one the dataset states (RATIO_TOLERANCE, 1%).
      const dataset = await bob.get<{ ratio_tolerance: number }>(`/v1/datasets/${datasetId}`);
      expect(dataset.body.ratio_tolerance).toBe(0.01);
      expect(response.body.message).toMatch(/the tolerance is 1\.00%/);
      await noRequests();
    });

    it('refuses a small file that is huge decoded (16-bit RGBA), from its header alone', async () => {
      // 8200x4100 is under the 50 M pixel limit; at 4 channels of 16 bits it is 269 MB decoded.
      const png = await sharp({
        create: { width: 8200, height: 4100, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 1 } },
      })
        .toColourspace('rgb16')
        .png()
        .toBuffer();
      expect(png.length).toBeLessThan(2_000_000);
      const response = await submit(png);
      expect(response.status).toBe(422);
      expect(response.body).toMatchObject({ error: 'IMAGE_RULES' });
      expect(response.body.message).toBe(
        'image is 8200x4100 with 4 channel(s) of 16 bits, 268960000 bytes decoded; the limit is 268435456 bytes',
      );
      await noRequests();
    });

    it('refuses a file that is not an image, and an image format it does not take', async () => {
      const text = await submit(Buffer.from('hello, I am a text file'), 'x.txt');
      expect(text.status).toBe(415);
      expect(text.body.message).toMatch(/not a readable image/);
      const gif = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#888' } })
        .gif()
        .toBuffer();
      const response = await submit(gif, 'x.gif');
      expect(response.status).toBe(415);
      expect(response.body.message).toMatch(/image is gif; send a PNG or JPEG/);
      await noRequests();
    });

    it('refuses a request without an image file', async () => {
      const response = await bob.post(`/v1/datasets/${datasetId}/classifications`, new FormData());
      expect(response.status).toBe(400);
      const json = await bob.post(`/v1/datasets/${datasetId}/classifications`, { image: 'x' });
      expect(json.status).toBe(400);
      expect(json.body.message).toMatch(/multipart/);
      await noRequests();
    });

    it('accepts an image that follows every rule, and holds a ?wait past 30 s while no worker runs', async () => {
      const response = await submit(await renderSample('bright', { width: 400, height: 200 }));
      expect(response.status).toBe(202);
      const started = Date.now();
      const view = await bob.get(`/v1/classifications/${response.body.id as string}?wait=32`);
      expect(view.status).toBe(200);
      expect(view.body.state).toBe('queued');
      expect(Date.now() - started).toBeGreaterThanOrEqual(31_500);
    }, 60_000);

    it('refuses a ?wait longer than 60 seconds', async () => {
      const response = await bob.get('/v1/classifications/0123456789abcdef01234567?wait=61');
      expect(response.status).toBe(400);
      expect(response.body.message).toMatch(/wait/);
    });
  });

  describe('datasets and ids', () => {
    // One wrong field at a time, so the message must name that one (and say what is wrong with it).
    it.each([
      ['name', { name: 'Bad Name!', img_width: 10 }, /^body\/name must match pattern /],
      ['img_width', { name: 'good-name', img_width: 0 }, /^body\/img_width must be >= 1$/],
    ])('says which field is wrong: %s', async (_field, fields, message) => {
      const response = await bob.post('/v1/datasets', { display_name: 'x', img_height: 10, ...fields });
      expect(response.status).toBe(400);
      expect(response.body.error).toBe('VALIDATION');
      expect(response.body.message).toMatch(message);
    });

    it('refuses a number where a string is expected instead of coercing it', async () => {
      const numbered = await bob.post('/v1/datasets', { name: 12345, display_name: 'x', img_width: 1, img_height: 1 });
      expect(numbered.status).toBe(400);
      expect(numbered.body.message).toMatch(/name/);
      const display = await bob.post('/v1/datasets', { name: 'ok', display_name: 42, img_width: 1, img_height: 1 });
      expect(display.status).toBe(400);
      const width = await bob.post('/v1/datasets', { name: 'ok', display_name: 'x', img_width: '64', img_height: 1 });
      expect(width.status).toBe(400);
      expect(await system.db.models.Dataset.countDocuments({})).toBe(1);
    });

    it('still reads numbers from query strings', async () => {
      const listed = await bob.get('/v1/datasets?limit=1');
      expect(listed.status).toBe(200);
      expect(listed.body.items).toHaveLength(1);
      expect((await bob.get('/v1/classifications/0123456789abcdef01234567?wait=1')).status).toBe(404);
    });

    it('refuses a duplicate dataset name for the same owner', async () => {
      const response = await bob.post('/v1/datasets', {
        name: 'wide',
        display_name: 'again',
        img_width: 1,
        img_height: 1,
      });
      expect(response.status).toBe(409);
    });

    it('answers 400 for a malformed id and 404 for an unknown one', async () => {
      expect((await bob.get('/v1/datasets/not-an-id')).status).toBe(400);
      expect((await bob.get('/v1/classifications/0123456789abcdef01234567')).status).toBe(404);
    });

    it('refuses to delete a dataset that has models', async () => {
      const withModel = await datasetWithDemoModel(bob, 'with-model', 'With a model');
      const response = await bob.delete(`/v1/datasets/${withModel.datasetId}`);
      expect(response.status).toBe(409);
      expect((await bob.get(`/v1/datasets/${withModel.datasetId}`)).status).toBe(200);
    });
  });
});
