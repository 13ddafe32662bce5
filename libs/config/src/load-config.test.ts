import { Type } from '@sinclair/typebox';
import { ConfigError, loadConfig } from './load-config';
import { port, amqpUrl, logLevel } from './fragments';

const schema = Type.Object({
  PORT: port(8080),
  AMQP_URL: amqpUrl,
  LOG_LEVEL: logLevel,
  FLAG: Type.Boolean({ default: false }),
});

describe('loadConfig', () => {
  it('converts strings and applies defaults', () => {
    const config = loadConfig(schema, { AMQP_URL: 'amqp://u:p@h/v', PORT: '9000', FLAG: 'true' });
    expect(config).toEqual({ PORT: 9000, AMQP_URL: 'amqp://u:p@h/v', LOG_LEVEL: 'info', FLAG: true });
  });

  it('names every bad variable without echoing its value', () => {
    let caught: unknown;
    try {
      loadConfig(schema, { PORT: 'eighty', AMQP_URL: 'http://secret@x' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.issues.map((i) => i.variable).sort()).toEqual(['AMQP_URL', 'PORT']);
    expect(err.message).not.toContain('secret');
  });

  it('reports a missing required variable as required, and treats empty as missing', () => {
    expect(() => loadConfig(schema, { AMQP_URL: '' })).toThrow(/AMQP_URL is required/);
  });

  it('rejects a log level outside the list', () => {
    expect(() => loadConfig(schema, { AMQP_URL: 'amqp://h', LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
});
