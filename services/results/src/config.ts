import { Type, type Static } from '@sinclair/typebox';
import { env, loadConfig } from '@cxr/config';

export const ResultsConfigSchema = Type.Object({
  LOG_LEVEL: env.logLevel,
  HOST: env.host,
  HEALTH_PORT: env.port(8082),
  AMQP_URL: env.amqpUrl,
  MONGODB_URI: env.mongoUri,
  MONGODB_DATABASE: env.databaseName,
  /** Results handled at once. */
  PREFETCH: env.positiveInt(16, 256),
  ...env.lifecycle,
});
export type ResultsConfig = Static<typeof ResultsConfigSchema>;

export function loadResultsConfig(source: Record<string, string | undefined> = process.env): ResultsConfig {
  return loadConfig(ResultsConfigSchema, source);
}
