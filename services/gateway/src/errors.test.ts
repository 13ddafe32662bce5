import { HttpError, outageOf, type DependencyError } from './errors';

/** An error as a library throws it: its class name, and the fields the mapping reads. */
function thrown(name: string, fields: Partial<DependencyError> = {}): DependencyError {
  const error: DependencyError = new Error(`${name} in a test`);
  error.name = name;
  return Object.assign(error, fields);
}

const s3Metadata = { attempts: 3, totalRetryDelay: 57 };

describe('outageOf: which errors are a dependency that cannot be reached (503), and which it names', () => {
  it.each(['MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoNotConnectedError'])(
    'names the database for a %s',
    (name) => {
      const outage = outageOf(thrown(name));
      expect(outage).toBeInstanceOf(HttpError);
      expect(outage).toMatchObject({
        statusCode: 503,
        code: 'UNAVAILABLE',
        message: 'the database (MongoDB) cannot be reached; try again shortly',
      });
    },
  );

  it.each([
    ['a refused connection', { code: 'ECONNREFUSED', $metadata: s3Metadata }],
    ['a reset connection', { code: 'ECONNRESET', $metadata: s3Metadata }],
    ['a 5xx answer', { $fault: 'server', $metadata: { httpStatusCode: 503 } }],
  ])('names the object store for %s from the S3 client', (_what, fields) => {
    expect(outageOf(thrown('Error', fields))).toMatchObject({
      statusCode: 503,
      code: 'UNAVAILABLE',
      message: 'the object store (S3) cannot be reached; try again shortly',
    });
  });

  it('answers 503 without naming a dependency for a refused connection from elsewhere', () => {
    expect(outageOf(thrown('Error', { code: 'ECONNREFUSED' }))).toMatchObject({
      statusCode: 503,
      code: 'UNAVAILABLE',
      message: 'a service the gateway depends on cannot be reached; try again shortly',
    });
  });

  it.each([
    ['a duplicate key', thrown('MongoServerError', { code: '11000' })],
    ['a validation error', thrown('ValidationError')],
    ['an S3 client error (4xx)', thrown('AccessDenied', { $fault: 'client', $metadata: { httpStatusCode: 403 } })],
    ['a programming error', new TypeError('x is undefined')],
  ])('is null for %s: that is not an outage', (_what, error) => {
    expect(outageOf(error)).toBeNull();
  });
});
