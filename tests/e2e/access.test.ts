import { buildDemoModel, renderSample } from '@cxr/demo-model';
import { Client, createUser, imageForm, modelForm } from '@cxr/client';
import { datasetWithDemoModel } from '../support/fixtures';
import { startSystem, type System } from '../support/system';

jest.setTimeout(120_000);

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
