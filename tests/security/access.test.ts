import { randomBytes } from 'node:crypto';
import { buildDemoModel, renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

/** Who calls: the resources' owner, another user, an admin user, and every kind of bad or missing credential. */
const CALLERS = ['owner', 'other', 'admin', 'bootstrap', 'none', 'revoked', 'malformed', 'wrongSecret'] as const;
type Caller = (typeof CALLERS)[number];
type Expected = Record<Caller, number>;

/** What a key that does not authenticate gets on any route, public or not. */
const BAD_KEYS = { revoked: 401, malformed: 401, wrongSecret: 401 } as const;
/** A route for users only: the bootstrap key may only create users, no key is no user. */
const userRoute = (owner: number, other: number, admin = other): Expected => ({
  owner,
  other,
  admin,
  bootstrap: 401,
  none: 401,
  ...BAD_KEYS,
});
/** A route anyone may call (probes, the API description): only a key that fails is refused. */
const open: Expected = { owner: 200, other: 200, admin: 200, bootstrap: 200, none: 200, ...BAD_KEYS };

interface Fixture {
  datasetId: string;
  modelId: string;
  /** A second, non-default model of the dataset, which its owner may retire. */
  spareModelId: string;
  requestId: string;
  /** An empty dataset of the owner's, made for the route that deletes one. */
  emptyDatasetId: string;
  /** One of the owner's keys, for the route that revokes one. */
  spareKeyId: string;
}

interface RouteCase {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** The route as the OpenAPI description writes it. */
  route: string;
  path(f: Fixture): string;
  body?(caller: Caller, f: Fixture): unknown;
  expected: Expected;
}

let unique = 0;
const next = (prefix: string) => `${prefix}${(unique += 1)}`;

const ROUTES: RouteCase[] = [
  { method: 'GET', route: '/live', path: () => '/live', expected: open },
  { method: 'GET', route: '/ready', path: () => '/ready', expected: open },
  { method: 'GET', route: '/health', path: () => '/health', expected: open },
  { method: 'GET', route: '/v1/openapi.json', path: () => '/v1/openapi.json', expected: open },
  { method: 'GET', route: '/docs', path: () => '/docs', expected: open },
  {
    method: 'GET',
    route: '/stats',
    path: () => '/stats',
    expected: { owner: 403, other: 403, admin: 200, bootstrap: 200, none: 401, ...BAD_KEYS },
  },
  {
    method: 'POST',
    route: '/v1/users',
    path: () => '/v1/users',
    body: () => ({ username: next('matrix-user-') }),
    expected: { owner: 403, other: 403, admin: 201, bootstrap: 201, none: 401, ...BAD_KEYS },
  },
  { method: 'GET', route: '/v1/users/me', path: () => '/v1/users/me', expected: userRoute(200, 200) },
  {
    method: 'PATCH',
    route: '/v1/users/me',
    path: () => '/v1/users/me',
    // Each user keeps its name: the route is reached, nobody's name changes (a valid body for every caller).
    body: (caller) => ({
      username: caller === 'owner' || caller === 'other' || caller === 'admin' ? caller : 'nobody',
    }),
    expected: userRoute(200, 200),
  },
  {
    method: 'POST',
    route: '/v1/users/me/api-keys',
    path: () => '/v1/users/me/api-keys',
    body: () => ({ name: next('key-') }),
    expected: userRoute(201, 201),
  },
  { method: 'GET', route: '/v1/users/me/api-keys', path: () => '/v1/users/me/api-keys', expected: userRoute(200, 200) },
  {
    method: 'GET',
    route: '/v1/users/me/webhook-secret',
    path: () => '/v1/users/me/webhook-secret',
    expected: userRoute(200, 200),
  },
  {
    method: 'DELETE',
    route: '/v1/users/me/api-keys/{keyId}',
    path: (f) => `/v1/users/me/api-keys/${f.spareKeyId}`,
    expected: userRoute(204, 404),
  },
  {
    method: 'POST',
    route: '/v1/datasets',
    path: () => '/v1/datasets',
    body: () => ({ name: next('matrix-'), display_name: 'Matrix', img_width: 64, img_height: 64 }),
    expected: userRoute(201, 201),
  },
  { method: 'GET', route: '/v1/datasets', path: () => '/v1/datasets', expected: userRoute(200, 200) },
  {
    method: 'GET',
    route: '/v1/datasets/{id}',
    path: (f) => `/v1/datasets/${f.datasetId}`,
    expected: userRoute(200, 404),
  },
  {
    method: 'PATCH',
    route: '/v1/datasets/{id}',
    path: (f) => `/v1/datasets/${f.datasetId}`,
    body: () => ({ display_name: 'Matrix' }),
    expected: userRoute(200, 404),
  },
  {
    method: 'DELETE',
    route: '/v1/datasets/{id}',
    path: (f) => `/v1/datasets/${f.emptyDatasetId}`,
    expected: userRoute(204, 404),
  },
  {
    method: 'POST',
    route: '/v1/datasets/{id}/models',
    path: (f) => `/v1/datasets/${f.datasetId}/models`,
    body: () => {
      const demo = buildDemoModel();
      return modelForm(demo.onnx, demo.labels, demo.inputSpec, 'matrix');
    },
    expected: userRoute(201, 404),
  },
  {
    method: 'GET',
    route: '/v1/datasets/{id}/models',
    path: (f) => `/v1/datasets/${f.datasetId}/models`,
    expected: userRoute(200, 404),
  },
  {
    method: 'PUT',
    route: '/v1/datasets/{id}/default-model',
    path: (f) => `/v1/datasets/${f.datasetId}/default-model`,
    body: (_caller, f) => ({ model_id: f.modelId }),
    expected: userRoute(200, 404),
  },
  { method: 'GET', route: '/v1/models/{id}', path: (f) => `/v1/models/${f.modelId}`, expected: userRoute(200, 404) },
  {
    method: 'GET',
    route: '/v1/models/{id}/file',
    path: (f) => `/v1/models/${f.modelId}/file`,
    expected: userRoute(200, 404),
  },
  {
    method: 'POST',
    route: '/v1/models/{id}/retire',
    path: (f) => `/v1/models/${f.spareModelId}/retire`,
    expected: userRoute(200, 404),
  },
  {
    method: 'POST',
    route: '/v1/datasets/{id}/classifications',
    path: (f) => `/v1/datasets/${f.datasetId}/classifications`,
    body: () => imageForm(sample),
    expected: userRoute(202, 404),
  },
  {
    method: 'POST',
    route: '/v1/models/{id}/classifications',
    path: (f) => `/v1/models/${f.modelId}/classifications`,
    body: () => imageForm(sample),
    expected: userRoute(202, 404),
  },
  { method: 'GET', route: '/v1/classifications', path: () => '/v1/classifications', expected: userRoute(200, 200) },
  {
    method: 'GET',
    route: '/v1/classifications/{id}',
    path: (f) => `/v1/classifications/${f.requestId}`,
    expected: userRoute(200, 404),
  },
];
/** The image every submission in the matrix sends. */
let sample: Buffer;

describe(`the access matrix: each of ${ROUTES.length} routes × ${CALLERS.length} callers = ${ROUTES.length * CALLERS.length} cells answers exactly as expected`, () => {
  let system: System;
  let clients: Record<Caller, Client>;
  let fixture: Fixture;
  /** Everything of the owner's that nobody else may see in an answer. */
  let ownersSecrets: string[];

  beforeAll(async () => {
    sample = await renderSample('dark');
    system = await startSystem(['gateway']);
    const bootstrap = new Client(system.gatewayUrl, system.adminKey);
    const made = await bootstrap.post<{ user: { id: string }; api_key: { id: string; key: string } }>('/v1/users', {
      username: 'owner',
    });
    const owner = bootstrap.withKey(made.body.api_key.key);
    const other = (await createUser(bootstrap, 'other')).client;
    const adminMade = await bootstrap.post<{ api_key: { key: string } }>('/v1/users', {
      username: 'admin',
      is_admin: true,
    });
    const admin = bootstrap.withKey(adminMade.body.api_key.key);

    const { datasetId, modelId } = await datasetWithDemoModel(owner, 'private', 'Private');
    const demo = buildDemoModel();
    const spare = await owner.post(
      `/v1/datasets/${datasetId}/models`,
      modelForm(demo.onnx, demo.labels, demo.inputSpec),
    );
    const empty = await owner.post('/v1/datasets', { name: 'empty', display_name: 'E', img_width: 64, img_height: 64 });
    const submitted = await owner.post(`/v1/datasets/${datasetId}/classifications`, imageForm(sample));
    const spareKey = await owner.post<{ id: string; key: string }>('/v1/users/me/api-keys', { name: 'spare' });
    const revokedKey = await owner.post<{ id: string; key: string }>('/v1/users/me/api-keys', { name: 'revoked' });
    expect([spare.status, empty.status, submitted.status, spareKey.status, revokedKey.status]).toEqual([
      201, 201, 202, 201, 201,
    ]);
    expect((await owner.delete(`/v1/users/me/api-keys/${revokedKey.body.id}`)).status).toBe(204);
    fixture = {
      datasetId,
      modelId,
      spareModelId: spare.body.id as string,
      requestId: submitted.body.id as string,
      emptyDatasetId: empty.body.id as string,
      spareKeyId: spareKey.body.id,
    };
    ownersSecrets = [
      made.body.user.id,
      made.body.api_key.id,
      made.body.api_key.key,
      spareKey.body.key,
      revokedKey.body.key,
      datasetId,
      modelId,
      fixture.spareModelId,
      fixture.requestId,
      fixture.emptyDatasetId,
      fixture.spareKeyId,
    ];
    clients = {
      owner,
      other,
      admin,
      bootstrap,
      none: new Client(system.gatewayUrl),
      revoked: bootstrap.withKey(revokedKey.body.key),
      malformed: bootstrap.withKey('cxr_not-a-key'),
      // The owner's own key id with a secret that is not its.
      wrongSecret: bootstrap.withKey(`cxr_${made.body.api_key.id}_${randomBytes(32).toString('base64url')}`),
    };
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('covers every route the API describes, and every route it serves', async () => {
    const described = await clients.owner.get<{ paths: Record<string, Record<string, unknown>> }>('/v1/openapi.json');
    const operations = Object.entries(described.body.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const covered = ROUTES.map((r) => `${r.method} ${r.route}`);
    expect(operations.length).toBeGreaterThan(15);
    expect(operations.filter((o) => !covered.includes(o))).toEqual([]);
    // The hidden ones (probes, counters, the description itself and its UI) are in the matrix too.
    expect(covered.filter((c) => !operations.includes(c)).sort()).toEqual(
      ['GET /docs', 'GET /health', 'GET /live', 'GET /ready', 'GET /stats', 'GET /v1/openapi.json'].sort(),
    );
  });

  /** The owner's records that another caller's request could change. */
  async function ownersState(): Promise<string> {
    const { ApiKey, ClassificationRequest, ClassifierModel, Dataset } = system.db.models;
    const owned = { _id: { $in: [fixture.datasetId, fixture.emptyDatasetId] } };
    return JSON.stringify({
      datasets: await Dataset.find(owned).sort({ _id: 1 }).lean(),
      models: await ClassifierModel.find({ dataset: fixture.datasetId }).sort({ _id: 1 }).lean(),
      requests: await ClassificationRequest.countDocuments({ dataset: fixture.datasetId }),
      keys: await ApiKey.find({ _id: fixture.spareKeyId }).lean(),
    });
  }

  it('answers each cell with its expected status, no 5xx, and neither shows nor changes the owner’s data for anyone else', async () => {
    const answered: string[] = [];
    const expected: string[] = [];
    const leaks: string[] = [];
    const changes: string[] = [];
    // The owner last on each route: its call may change what the others' would have found.
    const order = [...CALLERS.filter((c) => c !== 'owner'), 'owner' as const];
    for (const route of ROUTES) {
      const before = await ownersState();
      for (const caller of order) {
        if (caller === 'owner' && (await ownersState()) !== before) changes.push(`${route.method} ${route.route}`);
        const response = await clients[caller].request(
          route.method,
          route.path(fixture),
          route.body?.(caller, fixture),
        );
        answered.push(`${route.method} ${route.route} as ${caller}: ${response.status}`);
        expected.push(`${route.method} ${route.route} as ${caller}: ${route.expected[caller]}`);
        const text = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
        if (caller === 'owner') continue;
        for (const secret of ownersSecrets) {
          if (text.includes(secret)) leaks.push(`${route.method} ${route.route} as ${caller} shows ${secret}`);
        }
      }
    }
    expect(answered).toEqual(expected);
    expect(answered).toHaveLength(ROUTES.length * CALLERS.length);
    expect(leaks).toEqual([]);
    expect(changes).toEqual([]);
    process.stdout.write(
      `access matrix: ${answered.length} cells (${ROUTES.length} routes × ${CALLERS.length} callers)\n`,
    );

    // In the end the owner's data is as only the owner's own calls left it.
    const { ClassificationRequest, ClassifierModel, Dataset, ApiKey } = system.db.models;
    // The owner's submissions (2) and the fixture's; nobody else's got in.
    expect(await ClassificationRequest.countDocuments({ dataset: fixture.datasetId })).toBe(3);
    // The fixture's two models and the owner's upload.
    expect(await ClassifierModel.countDocuments({ dataset: fixture.datasetId })).toBe(3);
    expect(await Dataset.findById(fixture.emptyDatasetId).lean()).toBeNull();
    expect((await ApiKey.findById(fixture.spareKeyId).lean())?.revoked_at).toBeInstanceOf(Date);
    expect((await ClassifierModel.findById(fixture.spareModelId).lean())?.status).toBe('retired');
  });
});

describe("a second user can neither see nor change the first user's dataset and requests", () => {
  let system: System;
  let admin: Client;
  let dora: Client;
  let eve: Client;
  let datasetId: string;
  let requestId: string;

  beforeAll(async () => {
    system = await startSystem(['gateway']);
    admin = new Client(system.gatewayUrl, system.adminKey);
    dora = (await createUser(admin, 'dora')).client;
    eve = (await createUser(admin, 'eve')).client;
    ({ datasetId } = await datasetWithDemoModel(dora, 'private', 'Private'));
    const submitted = await dora.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('dark')),
    );
    requestId = submitted.body.id as string;
  });
  afterAll(async () => {
    await system?.stop();
  });

  it('hides a private dataset, its models and its requests from another user', async () => {
    expect((await eve.get(`/v1/datasets/${datasetId}`)).status).toBe(404);
    expect((await eve.patch(`/v1/datasets/${datasetId}`, { display_name: 'mine now' })).status).toBe(404);
    expect((await eve.delete(`/v1/datasets/${datasetId}`)).status).toBe(404);
    expect((await eve.get(`/v1/datasets/${datasetId}/models`)).status).toBe(404);
    expect((await eve.get(`/v1/classifications/${requestId}`)).status).toBe(404);
    const list = await eve.get<{ items: unknown[] }>('/v1/classifications');
    expect(list.body.items).toEqual([]);
    const datasets = await eve.get<{ items: unknown[] }>('/v1/datasets');
    expect(datasets.body.items).toEqual([]);
    const image = await renderSample('dark');
    expect((await eve.post(`/v1/datasets/${datasetId}/classifications`, imageForm(image))).status).toBe(404);
    expect((await dora.get(`/v1/datasets/${datasetId}`)).body.display_name).toBe('Private');
  });

  it('lets others use a public dataset but only its owner change it, and shows the owner their requests', async () => {
    expect((await dora.patch(`/v1/datasets/${datasetId}`, { visibility: 'public' })).status).toBe(200);
    expect((await eve.get(`/v1/datasets/${datasetId}`)).status).toBe(200);
    const patch = await eve.patch(`/v1/datasets/${datasetId}`, { display_name: 'mine now' });
    expect(patch.status).toBe(403);
    expect(patch.body.message).toMatch(/owner/);
    const demo = buildDemoModel();
    expect(
      (await eve.post(`/v1/datasets/${datasetId}/models`, modelForm(demo.onnx, demo.labels, demo.inputSpec))).status,
    ).toBe(403);

    const submitted = await eve.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(await renderSample('bright')),
    );
    expect(submitted.status).toBe(202);
    const eveRequest = submitted.body.id as string;
    // The owner of the dataset sees it; Eve sees hers but still not Dora's.
    expect((await dora.get(`/v1/classifications/${eveRequest}`)).status).toBe(200);
    expect((await eve.get(`/v1/classifications/${eveRequest}`)).status).toBe(200);
    expect((await eve.get(`/v1/classifications/${requestId}`)).status).toBe(404);
    const evesList = await eve.get<{ items: { id: string }[] }>('/v1/classifications');
    expect(evesList.body.items.map((i) => i.id)).toEqual([eveRequest]);
  });

  it('lets only admins create users, and keys can be rotated', async () => {
    expect((await eve.post('/v1/users', { username: 'mallory' })).status).toBe(403);
    const key = await eve.post<{ id: string; key: string }>('/v1/users/me/api-keys', { name: 'laptop' });
    expect(key.status).toBe(201);
    const laptop = eve.withKey(key.body.key);
    expect((await laptop.get('/v1/users/me')).body.username).toBe('eve');
    expect((await eve.delete(`/v1/users/me/api-keys/${key.body.id}`)).status).toBe(204);
    expect((await laptop.get('/v1/users/me')).status).toBe(401);
    const stored = await system.db.models.ApiKey.findById(key.body.id).lean();
    // The secret is everything after `cxr_<16 hex key id>_` (it may itself contain `_`).
    const secret = key.body.key.slice('cxr_'.length + 16 + 1);
    expect(secret).toHaveLength(43);
    expect(stored?.secret_hash).not.toContain(secret);
  });

  it("lets no one revoke another user's key, not even an admin: only its owner can", async () => {
    const tablet = await dora.post<{ id: string; key: string }>('/v1/users/me/api-keys', { name: 'tablet' });
    expect(tablet.status).toBe(201);
    const dorasTablet = dora.withKey(tablet.body.key);
    const made = await admin.post<{ api_key: { key: string } }>('/v1/users', { username: 'ada', is_admin: true });
    expect(made.status).toBe(201);
    const ada = admin.withKey(made.body.api_key.key);
    const path = `/v1/users/me/api-keys/${tablet.body.id}`;

    // A user's revocation reaches only their own keys: another's key is as unknown as a made-up one.
    const byEve = await eve.delete(path);
    expect(byEve.status).toBe(404);
    expect(byEve.body).toEqual({ error: 'NOT_FOUND', message: 'API key not found' });
    expect((await ada.delete(path)).status).toBe(404);
    // The bootstrap admin key can only create users.
    expect((await admin.delete(path)).status).toBe(401);
    expect((await dorasTablet.get('/v1/users/me')).body.username).toBe('dora');
    const listed = await dora.get<{ items: { id: string; revoked_at: string | null }[] }>('/v1/users/me/api-keys');
    expect(listed.body.items.find((k) => k.id === tablet.body.id)?.revoked_at).toBeNull();

    // Its owner can, once.
    expect((await dora.delete(path)).status).toBe(204);
    expect((await dorasTablet.get('/v1/users/me')).status).toBe(401);
    expect((await dora.delete(path)).status).toBe(404);
    expect((await dora.get('/v1/users/me')).body.username).toBe('dora');
  });

  it('lets a user rename themselves; the username must stay unique', async () => {
    expect((await eve.patch('/v1/users/me', { username: 'eve2' })).body.username).toBe('eve2');
    expect((await eve.patch('/v1/users/me', { username: 'dora' })).status).toBe(409);
  });
});
