import { createLogger } from '@cxr/logging';

/** Quiet unless TEST_LOG_LEVEL asks for more. */
export const testLogger = createLogger({
  service: 'test',
  level: process.env.TEST_LOG_LEVEL ?? 'silent',
  pretty: false,
});
