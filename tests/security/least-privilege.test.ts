// Issue 8, finding 7 ("FerretDB and the S3 server accept the one root key from every service"):
// each service's own accounts, as infra/stack.sh makes them and infra/run.sh hands them out, can
// do what the service does and nothing it does not. The whole system runs on them; then each
// account is tried, directly against the servers, at what it must not do.
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketPolicyCommand,
  GetBucketPolicyCommand,
  PutBucketPolicyCommand,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import mongoose, { type Connection } from 'mongoose';
import { Client, createUser, imageForm } from '@cxr/client';
import { renderSample } from '@cxr/demo-model';
import { ObjectStore } from '@cxr/storage';
import { GatewayConfigSchema } from '../../services/gateway/src/config';
import { InferenceConfigSchema } from '../../services/inference/src/config';
import { ResultsConfigSchema } from '../../services/results/src/config';
import { datasetWithDemoModel } from '../support/fixtures';
import {
  createTestBucket,
  createTestDatabase,
  serviceAccounts,
  stackEnv,
  type TestBucket,
  type TestDatabase,
} from '../support/stack';
import { startSystem, type System } from '../support/system';

jest.setTimeout(180_000);

const accounts = () => serviceAccounts();

function storeAs(keys: { accessKeyId: string; secretAccessKey: string }, bucket = accounts().bucket): ObjectStore {
  const { endpoint, region } = stackEnv().s3;
  return ObjectStore.fromConfig({ endpoint, region, ...keys, bucket });
}

/** The S3 server refused the call as not allowed (403), not for any other reason. */
async function expectS3Denied(call: Promise<unknown>): Promise<void> {
  const error: unknown = await call.then(
    () => new Error('the call was allowed'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3ServiceException);
  expect((error as S3ServiceException).$metadata.httpStatusCode).toBe(403);
}

/** The database refused the call for want of a right or a login, not for any other reason. */
async function expectDbDenied(call: Promise<unknown>): Promise<void> {
  await expect(call).rejects.toThrow(
    /permission denied|must be owner|password authentication failed|no pg_hba\.conf entry/,
  );
}

async function connectAs(uri: string, dbName: string): Promise<Connection> {
  return mongoose.createConnection(uri, { dbName, serverSelectionTimeoutMS: 5_000 }).asPromise();
}

function collection(connection: Connection, name: string) {
  const db = connection.db;
  if (!db) throw new Error('not connected');
  return db.collection(name);
}

describe('least privilege: the services on their own accounts', () => {
  let system: System;
  let user: Client;
  let modelId: string;
  let imageKey: string;
  let modelKey: string;

  beforeAll(async () => {
    system = await startSystem(undefined, { serviceAccounts: true });
    user = (await createUser(new Client(system.gatewayUrl, system.adminKey), `lp-${randomBytes(4).toString('hex')}`))
      .client;
    const { datasetId, modelId: id } = await datasetWithDemoModel(user, 'least-privilege', 'Least privilege');
    modelId = id;
    const submitted = await user.post(
      `/v1/datasets/${datasetId}/classifications`,
      imageForm(Buffer.from(await renderSample('striped', { seed: 5 }))),
    );
    expect(submitted.status).toBe(202);
    const view = await user.get<{ state: string; result: { label: string } | null }>(
      `/v1/classifications/${String(submitted.body.id)}?wait=60`,
    );
    expect(view.body).toMatchObject({ state: 'classified', result: { label: 'striped' } });
    const request = await system.db.models.ClassificationRequest.findById(submitted.body.id).lean();
    const model = await system.db.models.ClassifierModel.findById(modelId).lean();
    imageKey = request!.image.key;
    modelKey = model!.blob.key;
  });
  afterAll(async () => {
    // The service bucket and database stay (./cxr up's): the blobs this file made go, its records stay.
    await Promise.all([imageKey, modelKey].filter(Boolean).map((key) => system?.store.delete(key)));
    await system?.stop();
  });

  it('classify an upload end to end, each service on its own database and S3 accounts only', async () => {
    expect(imageKey).toMatch(/^images\//);
    expect(modelKey).toMatch(/^models\//);
    const download = await fetch(`${system.gatewayUrl}/v1/models/${modelId}/file`, {
      headers: { authorization: `Bearer ${String(user.apiKey)}` },
    });
    expect(download.status).toBe(200);
    expect((await download.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });

  it('gives each service the settings of the accounts it uses and no others', () => {
    const names = (schema: { properties: object }) => Object.keys(schema.properties);
    expect(names(GatewayConfigSchema)).toEqual(expect.arrayContaining(['MONGODB_URI', 'S3_ACCESS_KEY_ID']));
    expect(names(InferenceConfigSchema)).toContain('S3_ACCESS_KEY_ID');
    expect(names(InferenceConfigSchema).filter((n) => n.startsWith('MONGODB'))).toEqual([]);
    expect(names(ResultsConfigSchema)).toContain('MONGODB_URI');
    expect(names(ResultsConfigSchema).filter((n) => n.startsWith('S3_'))).toEqual([]);
    // The stack makes no S3 account for the results service.
    expect(Object.keys(process.env).filter((n) => /^S3_RESULTS/.test(n))).toEqual([]);
  });

  describe('S3', () => {
    const bytes = Buffer.from('not an image');
    const put = (store: ObjectStore, key: string) => store.put(key, bytes, { contentType: 'application/octet-stream' });
    let rootsBucket: TestBucket;

    beforeAll(async () => {
      rootsBucket = await createTestBucket();
      await put(rootsBucket.store, 'secret.txt');
    });
    afterAll(async () => {
      await rootsBucket?.destroy();
    });

    it('inference reads images and models, and cannot write, overwrite or delete any', async () => {
      const inference = storeAs(accounts().s3.inference);
      try {
        expect((await inference.getBuffer(imageKey, 1 << 24)).length).toBeGreaterThan(0);
        expect((await inference.getBuffer(modelKey, 1 << 28)).length).toBeGreaterThan(0);
        await expectS3Denied(put(inference, imageKey));
        await expectS3Denied(put(inference, `images/${randomBytes(4).toString('hex')}.png`));
        await expectS3Denied(put(inference, `models/${randomBytes(4).toString('hex')}.onnx`));
        await expectS3Denied(inference.delete(imageKey));
        await expectS3Denied(inference.delete(modelKey));
        expect((await system.store.getBuffer(imageKey, 1 << 24)).length).toBeGreaterThan(0);
      } finally {
        inference.close();
      }
    });

    it('the gateway writes and deletes under images/ and models/, reads models, and cannot read images', async () => {
      const gateway = storeAs(accounts().s3.gateway);
      const suffix = randomBytes(4).toString('hex');
      try {
        await put(gateway, `images/lp-${suffix}.png`);
        await put(gateway, `models/lp-${suffix}.onnx`);
        expect(await gateway.getBuffer(`models/lp-${suffix}.onnx`, 1024)).toEqual(bytes);
        await gateway.delete(`images/lp-${suffix}.png`);
        await gateway.delete(`models/lp-${suffix}.onnx`);
        expect(await system.store.listKeys(`images/lp-${suffix}`)).toEqual([]);
        await expectS3Denied(gateway.getBuffer(imageKey, 1 << 24));
        await expectS3Denied(put(gateway, `elsewhere/lp-${suffix}`));
        await expectS3Denied(put(gateway, `lp-${suffix}`));
      } finally {
        gateway.close();
      }
    });

    it.each(['gateway', 'inference'] as const)(
      '%s cannot change the bucket, its policy, or make or reach another bucket',
      async (service) => {
        const keys = accounts().s3[service];
        const own = storeAs(keys);
        const other = storeAs(keys, `lp-${randomBytes(4).toString('hex')}`);
        const { bucket } = accounts();
        const openPolicy = JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: '*', Action: ['s3:*'], Resource: [`arn:aws:s3:::${bucket}/*`] }],
        });
        try {
          await expectS3Denied(own.client.send(new GetBucketPolicyCommand({ Bucket: bucket })));
          await expectS3Denied(own.client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: openPolicy })));
          await expectS3Denied(own.client.send(new DeleteBucketPolicyCommand({ Bucket: bucket })));
          await expectS3Denied(own.client.send(new DeleteBucketCommand({ Bucket: bucket })));
          await expectS3Denied(other.client.send(new CreateBucketCommand({ Bucket: other.bucket })));
          // Another bucket (here one of root's, as the tests make them) is out of reach.
          const elsewhere = storeAs(keys, rootsBucket.bucket);
          try {
            await expectS3Denied(elsewhere.getBuffer('secret.txt', 1024));
            await expectS3Denied(put(elsewhere, 'planted.txt'));
          } finally {
            elsewhere.close();
          }
        } finally {
          own.close();
          other.close();
        }
      },
    );
  });

  describe('the database', () => {
    let other: TestDatabase;
    const open: Connection[] = [];
    const as = async (uri: string, dbName = accounts().database) => {
      const connection = await connectAs(uri, dbName);
      open.push(connection);
      return connection;
    };

    beforeAll(async () => {
      other = await createTestDatabase();
      await other.db.models.User.create({ username: 'someone-else' });
    });
    afterAll(async () => {
      await Promise.all(open.map((c) => c.close()));
      await other?.destroy();
    });

    it('the results service reads and writes requests and results, reads models, and nothing else', async () => {
      const results = await as(accounts().mongoUri.results);
      expect(await collection(results, 'classification_requests').countDocuments()).toBeGreaterThan(0);
      expect(await collection(results, 'classification_results').countDocuments()).toBeGreaterThan(0);
      expect(await collection(results, 'models').findOne({}, { projection: { labels: 1 } })).not.toBeNull();
      // Writes reach the server's rights check even when nothing matches.
      const none = { _id: new mongoose.Types.ObjectId() };
      expect(await collection(results, 'classification_requests').updateOne(none, { $set: { lp: 1 } })).toMatchObject({
        matchedCount: 0,
      });
      expect(await collection(results, 'classification_results').updateOne(none, { $set: { lp: 1 } })).toMatchObject({
        matchedCount: 0,
      });
      await expectDbDenied(collection(results, 'users').updateOne(none, { $set: { lp: 1 } }));
      await expectDbDenied(collection(results, 'users').findOne());
      await expectDbDenied(collection(results, 'api_keys').findOne());
      await expectDbDenied(collection(results, 'datasets').findOne());
      await expectDbDenied(collection(results, 'models').deleteMany({}));
      await expectDbDenied(collection(results, 'users').insertOne({ username: 'intruder' }));
    });

    it.each(['gateway', 'results'] as const)(
      '%s cannot drop or create a collection or the database, nor read another database',
      async (service) => {
        const uri = accounts().mongoUri[service];
        const own = await as(uri);
        await expectDbDenied(collection(own, 'classification_requests').drop());
        await expectDbDenied(own.createCollection(`lp_${randomBytes(3).toString('hex')}`));
        await expectDbDenied(collection(own, 'classification_requests').createIndex({ lp_field: 1 }));
        await expectDbDenied(own.dropDatabase());
        expect(await system.db.models.ClassificationRequest.countDocuments()).toBeGreaterThan(0);
        const elsewhere = await as(uri, other.name);
        await expectDbDenied(collection(elsewhere, 'users').findOne());
        await expectDbDenied(collection(elsewhere, 'users').insertOne({ username: 'intruder' }));
        expect(await other.db.models.User.countDocuments()).toBe(1);
      },
    );

    it('refuses a client without credentials or with a wrong password (what a worker without a database account has)', async () => {
      const base = new URL(accounts().mongoUri.gateway);
      const anonymous = await as(`mongodb://${base.host}/`);
      await expectDbDenied(collection(anonymous, 'users').findOne());
      await expectDbDenied(collection(anonymous, 'classification_requests').insertOne({ planted: true }));
      base.password = 'wrong';
      const wrong = await as(base.toString());
      await expectDbDenied(collection(wrong, 'users').findOne());
    });
  });
});
