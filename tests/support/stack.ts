// What the test stack (infra/stack.sh, started by infra/test.sh) gives the tests, and
// per-test-file isolation on it: a random vhost, database and bucket, removed afterwards.
import { randomBytes } from 'node:crypto';
import { ObjectStore } from '@cxr/storage';
import { connectDatabase, type Database } from '@cxr/db';

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the tests with \`npm test\` (infra/test.sh starts the servers and sets it)`,
    );
  }
  return value;
}

export function stackEnv() {
  return {
    amqpAdminUrl: required('AMQP_ADMIN_URL'),
    managementUrl: required('RABBITMQ_MANAGEMENT_URL'),
    adminUser: required('RABBITMQ_ADMIN_USER'),
    adminPassword: required('RABBITMQ_ADMIN_PASSWORD'),
    mongoUri: required('MONGODB_URI'),
    s3: {
      endpoint: required('S3_ENDPOINT'),
      region: process.env.S3_REGION ?? 'us-east-1',
      accessKeyId: required('S3_ACCESS_KEY_ID'),
      secretAccessKey: required('S3_SECRET_ACCESS_KEY'),
    },
  };
}

/**
 * The services' own accounts that infra/stack.sh made, with rights only on the service database
 * and bucket (the root and owner accounts of stackEnv() are for setting up and checking).
 */
export function serviceAccounts() {
  return {
    database: required('MONGODB_DATABASE'),
    bucket: required('S3_BUCKET'),
    mongoUri: { gateway: required('MONGODB_GATEWAY_URI'), results: required('MONGODB_RESULTS_URI') },
    s3: {
      gateway: {
        accessKeyId: required('S3_GATEWAY_ACCESS_KEY_ID'),
        secretAccessKey: required('S3_GATEWAY_SECRET_ACCESS_KEY'),
      },
      inference: {
        accessKeyId: required('S3_INFERENCE_ACCESS_KEY_ID'),
        secretAccessKey: required('S3_INFERENCE_SECRET_ACCESS_KEY'),
      },
    },
  };
}

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

async function management(method: string, path: string, body?: unknown): Promise<Response> {
  const env = stackEnv();
  const auth = Buffer.from(`${env.adminUser}:${env.adminPassword}`).toString('base64');
  const response = await fetch(`${env.managementUrl}/api/${path}`, {
    method,
    headers: { authorization: `Basic ${auth}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok && !(method === 'DELETE' && response.status === 404)) {
    throw new Error(`RabbitMQ management ${method} ${path}: ${response.status} ${await response.text()}`);
  }
  return response;
}

interface ConnectionInfo {
  name: string;
  client_properties?: { connection_name?: string };
}

/**
 * Closes from the server side, as a broker restart would, every AMQP connection whose client
 * named itself `connectionName` (client property `connection_name`). The management API lists
 * a new connection after a short delay, so this waits until there is one (30 s at most).
 * Returns how many were closed.
 */
export async function closeConnectionsNamed(connectionName: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const all = (await (await management('GET', 'connections')).json()) as ConnectionInfo[];
    const named = all.filter((c) => c.client_properties?.connection_name === connectionName);
    for (const { name } of named) await management('DELETE', `connections/${encodeURIComponent(name)}`);
    if (named.length > 0) return named.length;
    if (Date.now() > deadline) throw new Error(`no AMQP connection named '${connectionName}' appeared within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Takes a user's permissions on a vhost away (new connections are refused) or gives them back. */
export async function setVhostAccess(vhost: string, allowed: boolean): Promise<void> {
  const user = encodeURIComponent(stackEnv().adminUser);
  const path = `permissions/${encodeURIComponent(vhost)}/${user}`;
  if (allowed) await management('PUT', path, { configure: '.*', write: '.*', read: '.*' });
  else await management('DELETE', path);
}

export interface TestVhost {
  name: string;
  /** The admin user's URL for this vhost. */
  amqpUrl: string;
  destroy(): Promise<void>;
}

export async function createVhost(): Promise<TestVhost> {
  const env = stackEnv();
  const name = randomName('test');
  await management('PUT', `vhosts/${encodeURIComponent(name)}`, {});
  await setVhostAccess(name, true);
  const url = new URL(env.amqpAdminUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return {
    name,
    amqpUrl: url.toString(),
    destroy: async () => {
      await management('DELETE', `vhosts/${encodeURIComponent(name)}`);
    },
  };
}

export interface TestDatabase {
  name: string;
  uri: string;
  db: Database;
  destroy(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const env = stackEnv();
  const name = randomName('test').replace('-', '_');
  const db = await connectDatabase(env.mongoUri, name);
  return {
    name,
    uri: env.mongoUri,
    db,
    async destroy() {
      await db.connection.dropDatabase();
      await db.close();
    },
  };
}

export interface TestBucket {
  bucket: string;
  store: ObjectStore;
  destroy(): Promise<void>;
}

export async function createTestBucket(): Promise<TestBucket> {
  const env = stackEnv();
  const bucket = randomName('test');
  const store = ObjectStore.fromConfig({ ...env.s3, bucket });
  await store.ensureBucket();
  return {
    bucket,
    store,
    async destroy() {
      await store.destroyBucket();
      store.close();
    },
  };
}
