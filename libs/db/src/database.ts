import mongoose, { type Connection } from 'mongoose';
import { apiKeySchema } from './entities/api-key';
import { classificationRequestSchema } from './entities/classification-request';
import { classificationResultSchema } from './entities/classification-result';
import { classifierModelSchema } from './entities/classifier-model';
import { datasetSchema } from './entities/dataset';
import { dispatchClaimSchema } from './entities/dispatch-claim';
import { idempotencyRecordSchema } from './entities/idempotency-record';
import { timerCursorSchema } from './entities/timer-cursor';
import { userSchema } from './entities/user';

function bindModels(connection: Connection) {
  return {
    User: connection.model('User', userSchema),
    ApiKey: connection.model('ApiKey', apiKeySchema),
    Dataset: connection.model('Dataset', datasetSchema),
    ClassifierModel: connection.model('ClassifierModel', classifierModelSchema),
    ClassificationRequest: connection.model('ClassificationRequest', classificationRequestSchema),
    ClassificationResult: connection.model('ClassificationResult', classificationResultSchema),
    DispatchClaim: connection.model('DispatchClaim', dispatchClaimSchema),
    IdempotencyRecord: connection.model('IdempotencyRecord', idempotencyRecordSchema),
    TimerCursor: connection.model('TimerCursor', timerCursorSchema),
  };
}
export type Models = ReturnType<typeof bindModels>;

/** Commands that read or write documents; what "database operations per request" counts. */
const DATA_COMMANDS = new Set(['find', 'getMore', 'insert', 'update', 'delete', 'findAndModify', 'aggregate', 'count']);

export interface Database {
  connection: Connection;
  models: Models;
  /** Data commands sent since the connection opened, by command name (find, insert, update…). */
  operations(): Record<string, number>;
  /** Round trip to the server; throws when it does not answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a dedicated connection (not mongoose's global one, so tests and services can hold
 * several) and creates the indexes. Correctness rests on the unique indexes, which work the
 * same on MongoDB and FerretDB; nothing here needs transactions or change streams.
 */
export async function connectDatabase(uri: string, dbName: string): Promise<Database> {
  const connection = mongoose.createConnection(uri, {
    dbName,
    autoIndex: false,
    autoCreate: true,
    serverSelectionTimeoutMS: 5_000,
    monitorCommands: true,
  });
  await connection.asPromise();
  const operations: Record<string, number> = {};
  connection.getClient().on('commandStarted', (event: { commandName: string }) => {
    if (DATA_COMMANDS.has(event.commandName)) operations[event.commandName] = (operations[event.commandName] ?? 0) + 1;
  });
  const models = bindModels(connection);
  for (const model of Object.values(models)) {
    await model.createCollection();
    await model.createIndexes();
  }
  let closing: Promise<void> | null = null;
  return {
    connection,
    models,
    operations: () => ({ ...operations }),
    async ping() {
      const db = connection.db;
      if (!db) throw new Error('database connection is not open');
      await db.command({ ping: 1 });
    },
    close() {
      closing ??= connection.close();
      return closing;
    },
  };
}

/**
 * A write refused by a unique index. MongoDB says so with code 11000; FerretDB v1 does too for
 * inserts, but an update that breaks a unique index comes back as an internal error carrying
 * the backend's message (SQLite's "UNIQUE constraint failed", PostgreSQL's SQLSTATE 23505,
 * unique_violation), so those are recognised as well.
 */
export function isDuplicateKeyError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (
    code === 11000 ||
    (typeof message === 'string' &&
      (message.includes('UNIQUE constraint failed') || message.includes('(SQLSTATE 23505)')))
  );
}
