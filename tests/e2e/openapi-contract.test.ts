// The OpenAPI contract against the real system: the served document is the one committed
// (services/gateway/openapi.json, which the client is generated from and the lint test reads), and
// every operation, driven by its operationId, answers only statuses it declares with bodies that
// validate against the schema declared for them: a success and at least one error each.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type Ajv2020 from 'ajv/dist/2020';
import type { Static, TSchema } from '@sinclair/typebox';
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import type * as Schemas from '../../services/gateway/src/schemas';
import { openapiValidator } from '../support/openapi';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

const COMMITTED = resolve(__dirname, '..', '..', 'services', 'gateway', 'openapi.json');

interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
}
interface CallOptions {
  params?: Record<string, string>;
  query?: Record<string, string | number>;
  json?: unknown;
  form?: FormData;
  /** A raw body with its Content-Type. */
  raw?: { body: string; contentType: string };
  headers?: Record<string, string>;
  /** The API key; null sends none. The owner's by default. */
  key?: string | null;
}
type Of<K extends keyof typeof Schemas> = (typeof Schemas)[K] extends infer T extends TSchema ? Static<T> : never;
/** The success body of each operation, as the tests read it. */
interface Bodies {
  createUser: Of<'CreatedUser'>;
  getMe: Of<'User'>;
  renameMe: Of<'User'>;
  createApiKey: Of<'NewApiKey'>;
  listApiKeys: Of<'ApiKeyList'>;
  revokeApiKey: object;
  getWebhookSecret: Of<'WebhookSecret'>;
  createDataset: Of<'Dataset'>;
  listDatasets: Of<'DatasetPage'>;
  getDataset: Of<'Dataset'>;
  updateDataset: Of<'Dataset'>;
  deleteDataset: object;
  uploadModel: Of<'Model'>;
  listModels: Of<'ModelPage'>;
  getModel: Of<'Model'>;
  downloadModel: Buffer;
  retireModel: Of<'Model'>;
  setDefaultModel: Of<'Model'>;
  classifyWithDataset: Of<'Submission'>;
  classifyWithModel: Of<'Submission'>;
  getClassification: Of<'ClassificationRequest'>;
  listClassifications: Of<'ClassificationPage'>;
}
interface Answer<K extends keyof Bodies> {
  status: number;
  /** The success body, or an error's fields (the document check says which it was). */
  body: Bodies[K] & Partial<Of<'ApiError'>>;
}

describe('the OpenAPI contract', () => {
  let system: System;
  let doc: Document;
  let ajv: Ajv2020;
  const operations = new Map<string, { method: string; path: string; operation: Operation }>();
  /** operationId → the statuses it answered. */
  const answered = new Map<string, number[]>();
  const violations: string[] = [];
  let ownerKey: string;
  let otherKey: string;

  beforeAll(async () => {
    system = await startSystem();
    doc = (await (await fetch(`${system.gatewayUrl}/v1/openapi.json`)).json()) as Document;
    ajv = openapiValidator(doc);
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        operations.set(operation.operationId, { method: method.toUpperCase(), path, operation });
      }
    }
  });
  afterAll(async () => {
    await system?.stop();
  });

  /** Calls an operation by its operationId and checks its answer against the document. */
  async function call<K extends keyof Bodies>(operationId: K, options: CallOptions = {}): Promise<Answer<K>> {
    const found = operations.get(operationId);
    if (!found) throw new Error(`the document has no operation ${operationId}`);
    const path = found.path.replace(/\{(\w+)\}/g, (_, name: string) => options.params?.[name] ?? `{${name}}`);
    const query = new URLSearchParams(
      Object.entries(options.query ?? {}).map(([k, v]) => [k, String(v)] as [string, string]),
    ).toString();
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? ownerKey : options.key;
    if (key) headers.authorization = `Bearer ${key}`;
    let body: RequestInit['body'];
    if (options.form) body = options.form;
    else if (options.raw) {
      body = options.raw.body;
      headers['content-type'] = options.raw.contentType;
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${system.gatewayUrl}${path}${query ? `?${query}` : ''}`, {
      method: found.method,
      headers,
      body,
    });
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]!;
    const bytes = Buffer.from(await response.arrayBuffer());
    const parsed: unknown = contentType === 'application/json' ? JSON.parse(bytes.toString()) : bytes;
    answered.set(operationId, [...(answered.get(operationId) ?? []), response.status]);
    check(operationId, found, response.status, contentType, bytes, parsed);
    return { status: response.status, body: parsed as Answer<K>['body'] };
  }

  function check(
    operationId: string,
    found: { method: string; path: string; operation: Operation },
    status: number,
    contentType: string,
    bytes: Buffer,
    body: unknown,
  ) {
    const where = `${operationId} ${status}`;
    const declared = found.operation.responses[String(status)];
    if (!declared) {
      violations.push(`${where}: status not declared (${bytes.toString().slice(0, 200)})`);
      return;
    }
    if (!declared.content) {
      if (bytes.length > 0) violations.push(`${where}: declared without a body, answered ${bytes.length} bytes`);
      return;
    }
    const media = declared.content[contentType];
    if (!media) {
      violations.push(`${where}: answered ${contentType}, declared ${Object.keys(declared.content).join(', ')}`);
      return;
    }
    if (contentType !== 'application/json') return;
    const pointer = ['paths', found.path, found.method.toLowerCase(), 'responses', String(status), 'content']
      .map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    const validate = ajv.compile({ $ref: `openapi.json#/${pointer}/application~1json/schema` });
    if (!validate(body)) {
      violations.push(`${where}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`);
    }
  }

  it('is the committed document (UPDATE_OPENAPI=1 rewrites services/gateway/openapi.json)', () => {
    const served = `${JSON.stringify(doc, null, 2)}\n`;
    if (process.env.UPDATE_OPENAPI === '1') writeFileSync(COMMITTED, served);
    expect(readFileSync(COMMITTED, 'utf8')).toBe(served);
  });

  it("answers every operation's success and errors as the document declares them", async () => {
    // Users and keys.
    const created = await call('createUser', { json: { username: 'contract-owner' }, key: system.adminKey });
    expect(created.status).toBe(201);
    ownerKey = created.body.api_key.key;
    const other = await call('createUser', { json: { username: 'contract-other' }, key: system.adminKey });
    otherKey = other.body.api_key.key;
    expect((await call('createUser', { json: { username: 'contract-owner' }, key: system.adminKey })).status).toBe(409);
    expect((await call('createUser', { json: { username: 'contract-x' } })).status).toBe(403);
    expect((await call('createUser', { json: { username: 1 }, key: system.adminKey })).status).toBe(400);

    expect((await call('getMe')).body.username).toBe('contract-owner');
    expect((await call('getMe', { key: null })).status).toBe(401);
    expect((await call('renameMe', { json: { username: 'contract-owner2' } })).status).toBe(200);
    expect((await call('renameMe', { json: { username: 'contract-other' } })).status).toBe(409);
    expect((await call('renameMe', { raw: { body: '{"username":', contentType: 'application/json' } })).status).toBe(
      400,
    );
    const newKey = await call('createApiKey', { json: { name: 'spare' } });
    expect(newKey.status).toBe(201);
    expect((await call('createApiKey', { json: { name: '' } })).status).toBe(400);
    expect(
      (await call('createApiKey', { raw: { body: '<name>x</name>', contentType: 'application/xml' } })).status,
    ).toBe(415);
    const keys = await call('listApiKeys');
    expect(keys.body.items).toHaveLength(2);
    expect(JSON.stringify(keys.body)).not.toMatch(/secret|hash|cxr_/);
    expect((await call('listApiKeys', { key: 'cxr_not-a-key' })).status).toBe(401);
    expect((await call('revokeApiKey', { params: { keyId: newKey.body.id } })).status).toBe(204);
    expect((await call('revokeApiKey', { params: { keyId: newKey.body.id } })).status).toBe(404);
    expect((await call('revokeApiKey', { params: { keyId: 'nope' } })).status).toBe(400);

    // Datasets.
    const datasetBody = { name: 'chest', display_name: 'Chest', img_width: 64, img_height: 64, visibility: 'public' };
    const dataset = await call('createDataset', { json: datasetBody });
    expect(dataset.status).toBe(201);
    const datasetId: string = dataset.body.id;
    expect((await call('createDataset', { json: datasetBody })).status).toBe(409);
    const empty = await call('createDataset', { json: { ...datasetBody, name: 'empty' } });
    expect((await call('listDatasets', { query: { limit: 1 } })).body.next).toEqual(expect.any(String));
    expect((await call('listDatasets', { query: { limit: 0 } })).status).toBe(400);
    expect((await call('getDataset', { params: { id: datasetId } })).body.default_model).toBeNull();
    expect((await call('getDataset', { params: { id: '0'.repeat(24) } })).status).toBe(404);
    expect((await call('updateDataset', { params: { id: datasetId }, json: { description: 'x' } })).status).toBe(200);
    expect((await call('updateDataset', { params: { id: datasetId }, json: {} })).status).toBe(400);
    expect(
      (await call('updateDataset', { params: { id: datasetId }, json: { description: 'y' }, key: otherKey })).status,
    ).toBe(403);

    // Models.
    const demo = buildDemoModel();
    const modelForm = (labels: readonly string[]) => {
      const form = new FormData();
      form.append('name', 'demo');
      form.append('labels', JSON.stringify(labels));
      form.append('input_spec', JSON.stringify(demo.inputSpec));
      form.append('file', new Blob([demo.onnx]), 'model.onnx');
      return form;
    };
    const model = await call('uploadModel', { params: { id: datasetId }, form: modelForm(demo.labels) });
    expect(model.status).toBe(201);
    const modelId: string = model.body.id;
    const spare = await call('uploadModel', { params: { id: datasetId }, form: modelForm(demo.labels) });
    expect(spare.status).toBe(201);
    const mismatch = await call('uploadModel', { params: { id: datasetId }, form: modelForm(['one']) });
    expect(mismatch.body.error).toBe('LABELS_MISMATCH');
    expect(
      (await call('uploadModel', { params: { id: datasetId }, form: modelForm(demo.labels), key: otherKey })).status,
    ).toBe(403);
    expect((await call('listModels', { params: { id: datasetId } })).body.items).toHaveLength(2);
    expect((await call('listModels', { params: { id: '0'.repeat(24) } })).status).toBe(404);
    expect((await call('getModel', { params: { id: modelId } })).body.is_default).toBe(true);
    expect((await call('getModel', { params: { id: '0'.repeat(24) } })).status).toBe(404);
    const file = await call('downloadModel', { params: { id: modelId } });
    expect(Buffer.compare(file.body as Buffer, demo.onnx)).toBe(0);
    expect((await call('downloadModel', { params: { id: '0'.repeat(24) } })).status).toBe(404);
    expect((await call('retireModel', { params: { id: modelId } })).status).toBe(409);
    expect(
      (await call('setDefaultModel', { params: { id: datasetId }, json: { model_id: spare.body.id } })).status,
    ).toBe(200);
    expect((await call('retireModel', { params: { id: modelId } })).body.status).toBe('retired');
    expect((await call('setDefaultModel', { params: { id: datasetId }, json: { model_id: modelId } })).status).toBe(
      409,
    );
    expect(
      (await call('setDefaultModel', { params: { id: datasetId }, json: { model_id: '0'.repeat(24) } })).status,
    ).toBe(400);
    expect((await call('deleteDataset', { params: { id: datasetId } })).status).toBe(409);
    expect((await call('deleteDataset', { params: { id: empty.body.id } })).status).toBe(204);

    // Classifications.
    const imageForm = (image: Buffer) => {
      const form = new FormData();
      form.append('image', new Blob([image]), 'image.png');
      return form;
    };
    const image = await renderSample('bright', { width: 64, height: 64, seed: 1 });
    const idempotent = { 'Idempotency-Key': 'contract-1' };
    const submitted = await call('classifyWithDataset', {
      params: { id: datasetId },
      form: imageForm(image),
      headers: idempotent,
    });
    expect(submitted.status).toBe(202);
    const repeated = await call('classifyWithDataset', {
      params: { id: datasetId },
      form: imageForm(image),
      headers: idempotent,
    });
    // The same request, in whatever state it has reached since.
    expect(repeated.status).toBe(200);
    expect(repeated.body.id).toBe(submitted.body.id);
    const small = await renderSample('bright', { width: 32, height: 32, seed: 1 });
    expect((await call('classifyWithDataset', { params: { id: datasetId }, form: imageForm(small) })).body.error).toBe(
      'IMAGE_RULES',
    );
    expect(
      (await call('classifyWithDataset', { params: { id: datasetId }, form: imageForm(Buffer.from('not an image')) }))
        .status,
    ).toBe(415);
    const byModel = await call('classifyWithModel', { params: { id: spare.body.id }, form: imageForm(image) });
    expect(byModel.status).toBe(202);
    expect((await call('classifyWithModel', { params: { id: modelId }, form: imageForm(image) })).status).toBe(409);

    const done = await call('getClassification', { params: { id: submitted.body.id }, query: { wait: 30 } });
    expect(done.body.state).toBe('classified');
    expect(done.body.result?.scores).toHaveLength(demo.labels.length);
    expect(JSON.stringify(done.body)).not.toMatch(/token|dispatch_token|correlation|idempotency|key/i);
    expect((await call('getClassification', { params: { id: '0'.repeat(24) } })).status).toBe(404);
    expect((await call('getClassification', { params: { id: submitted.body.id }, key: otherKey })).status).toBe(404);
    expect((await call('listClassifications', { query: { role: 'submitter' } })).body.items).toHaveLength(2);
    expect((await call('listClassifications', { query: { state: 'lost' } })).status).toBe(400);

    // Webhooks: the secret, a refused callback_url, and a request that shows its webhook.
    expect((await call('getWebhookSecret')).body.secret).toMatch(/^whsec_/);
    expect((await call('getWebhookSecret', { key: null })).status).toBe(401);
    const refusedCallback = await call('classifyWithDataset', {
      params: { id: datasetId },
      query: { callback_url: 'http://10.0.0.1/hook' },
      form: imageForm(image),
    });
    expect(refusedCallback.body.error).toBe('CALLBACK_URL');
    const withCallback = await call('classifyWithModel', {
      params: { id: spare.body.id },
      query: { callback_url: 'http://127.0.0.1:9/unreachable' },
      form: imageForm(image),
    });
    expect(withCallback.status).toBe(202);
    const hooked = await call('getClassification', { params: { id: withCallback.body.id }, query: { wait: 30 } });
    expect(hooked.body.webhook).toMatchObject({ url: 'http://127.0.0.1:9/unreachable' });

    // Every operation was driven to a success and an error; every answer was as declared.
    const exercised = [...operations.keys()].map((id) => {
      const statuses = answered.get(id) ?? [];
      return { id, success: statuses.some((s) => s < 300), error: statuses.some((s) => s >= 400) };
    });
    expect(exercised.filter((o) => !o.success || !o.error)).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('serves Swagger UI at /docs with its assets, from this origin and without a key', async () => {
    const page = await fetch(`${system.gatewayUrl}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
    const assets = [...(await page.text()).matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('/docs/static/swagger-ui-bundle.js');
    for (const asset of assets) {
      expect(`${asset} ${(await fetch(`${system.gatewayUrl}${asset}`)).status}`).toBe(`${asset} 200`);
    }
  });

  it('declares an operationId, a tag, a success and the shared error schema on every operation', () => {
    const missing = [...operations.values()].flatMap(({ method, path, operation }) => {
      const op = operation as Operation & { tags?: string[] };
      const problems: string[] = [];
      if (!/^[a-z][A-Za-z]+$/.test(op.operationId)) problems.push('operationId');
      if (!op.tags?.length) problems.push('tags');
      if (!Object.keys(op.responses).some((s) => s.startsWith('2'))) problems.push('success');
      for (const status of ['401', '429', '500', '503']) {
        const schema = op.responses[status]?.content?.['application/json']?.schema as { $ref?: string } | undefined;
        if (schema?.$ref !== '#/components/schemas/ApiError') problems.push(status);
      }
      return problems.map((p) => `${method} ${path}: ${p}`);
    });
    expect(missing).toEqual([]);
    expect(operations.size).toBe(22);
  });
});
