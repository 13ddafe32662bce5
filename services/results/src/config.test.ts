import { ConfigError } from '@cxr/config';
import { loadResultsConfig } from './config';

const required = {
  AMQP_URL: 'amqp://u:p@localhost:5672/v',
  MONGODB_URI: 'mongodb://localhost:27017/',
};

function refusal(source: Record<string, string | undefined>): ConfigError {
  try {
    loadResultsConfig(source);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('loadResultsConfig', () => {
  it('applies the documented defaults to everything not set', () => {
    expect(loadResultsConfig(required)).toEqual({
      ...required,
      LOG_LEVEL: 'info',
      HOST: '127.0.0.1',
      HEALTH_PORT: 8082,
      MONGODB_DATABASE: 'cxr',
      PREFETCH: 16,
      PUBLISH_GRACE_SECONDS: 30,
      LEASE_SECONDS: 600,
      MAX_DISPATCHES: 3,
      DEAD_LETTER_GRACE_SECONDS: 60,
      DISPATCH_TOKEN_TTL_SECONDS: 86_400,
      TOKEN_RETENTION_SECONDS: 86_400,
      IMAGE_RETENTION_DAYS: 30,
    });
  });

  it.each([['AMQP_URL'], ['MONGODB_URI']])('refuses to start without %s, naming it as required', (name) => {
    expect(refusal({ ...required, [name]: '' }).issues).toEqual([{ variable: name, message: 'is required' }]);
  });

  it('refuses a non-integer or out-of-range prefetch and lifecycle setting, naming each', () => {
    expect(refusal({ ...required, PREFETCH: '2.5' }).issues).toEqual([
      { variable: 'PREFETCH', message: 'expected integer (an integer from 1 to 256)' },
    ]);
    expect(refusal({ ...required, PREFETCH: '257' }).issues).toEqual([
      { variable: 'PREFETCH', message: 'expected integer to be less or equal to 256 (an integer from 1 to 256)' },
    ]);
    expect(
      refusal({ ...required, LEASE_SECONDS: '0', HEALTH_PORT: '-1' })
        .issues.map((i) => i.variable)
        .sort(),
    ).toEqual(['HEALTH_PORT', 'LEASE_SECONDS']);
  });
});
