import { Type } from '@sinclair/typebox';
import { ConfigError, loadConfig } from './load-config';
import { port, amqpUrl, logLevel, positiveInt } from './fragments';

const schema = Type.Object({
  PORT: port(8080),
  AMQP_URL: amqpUrl,
  LOG_LEVEL: logLevel,
  FLAG: Type.Boolean({ default: false }),
});

const numbers = Type.Object({
  COUNT: positiveInt(4, 10),
  RATIO: Type.Number({ minimum: 0, maximum: 0.5, default: 0.01, description: 'a number from 0 to 0.5' }),
});

/** The issues loadConfig reports, by variable. */
function issues(schema: Parameters<typeof loadConfig>[0], source: Record<string, string>): Record<string, string> {
  try {
    loadConfig(schema, source);
  } catch (error) {
    if (error instanceof ConfigError) return Object.fromEntries(error.issues.map((i) => [i.variable, i.message]));
    throw error;
  }
  return {};
}

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

  it('refuses a value that is not a decimal integer instead of truncating it', () => {
    for (const bad of ['2.5', '1e2', '0x10', 'true', '8080abc', 'eighty']) {
      expect(issues(schema, { AMQP_URL: 'amqp://h', PORT: bad })).toEqual({ PORT: 'expected integer (a TCP port)' });
    }
    for (const bad of ['2.5', '1e1']) {
      expect(issues(numbers, { COUNT: bad })).toEqual({ COUNT: 'expected integer (an integer from 1 to 10)' });
    }
    expect(loadConfig(schema, { AMQP_URL: 'amqp://h', PORT: ' 9000 ' }).PORT).toBe(9000);
    expect(loadConfig(schema, { AMQP_URL: 'amqp://h', PORT: '+0' }).PORT).toBe(0);
  });

  it('reads a number only when written as one', () => {
    expect(loadConfig(numbers, { RATIO: '0.25' }).RATIO).toBe(0.25);
    expect(loadConfig(numbers, { RATIO: '.5' }).RATIO).toBe(0.5);
    expect(loadConfig(numbers, { RATIO: '1e-2' }).RATIO).toBe(0.01);
    for (const bad of ['0x10', 'true', '0.1.2', 'a lot']) {
      expect(issues(numbers, { RATIO: bad })).toEqual({ RATIO: 'expected number (a number from 0 to 0.5)' });
    }
  });

  it('names a value out of range with the bound it crossed', () => {
    expect(issues(numbers, { COUNT: '0', RATIO: '0.6' })).toEqual({
      COUNT: 'expected integer to be greater or equal to 1 (an integer from 1 to 10)',
      RATIO: 'expected number to be less or equal to 0.5 (a number from 0 to 0.5)',
    });
    expect(issues(numbers, { COUNT: '11' })).toEqual({
      COUNT: 'expected integer to be less or equal to 10 (an integer from 1 to 10)',
    });
    expect(() => loadConfig(numbers, { COUNT: '11' })).toThrow(
      'invalid configuration: COUNT expected integer to be less or equal to 10',
    );
  });

  it('applies defaults to unset and empty numbers', () => {
    expect(loadConfig(numbers, {})).toEqual({ COUNT: 4, RATIO: 0.01 });
    expect(loadConfig(numbers, { COUNT: '', RATIO: '' })).toEqual({ COUNT: 4, RATIO: 0.01 });
    expect(loadConfig(numbers, { COUNT: '10', RATIO: '0' })).toEqual({ COUNT: 10, RATIO: 0 });
  });
});
