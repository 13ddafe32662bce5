export { loadConfig, ConfigError } from './load-config';
export type { ConfigIssue } from './load-config';
export * as env from './fragments';
