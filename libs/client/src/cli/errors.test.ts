import { CxrApiError } from '../cxr-client';
import { CliError, explain } from './errors';

describe('explain', () => {
  it('tells what to do about a bad key, a missing id and a refusal, in the API words', () => {
    expect(explain(new CxrApiError(401, 'UNAUTHORIZED', 'unknown API key'))).toBe(
      'the API key is not valid; run cxr login or set CXR_API_KEY',
    );
    expect(explain(new CxrApiError(404, 'NOT_FOUND', 'dataset not found'))).toBe(
      'not found: dataset not found; check the id (cxr datasets list, cxr models list)',
    );
    expect(explain(new CxrApiError(422, 'IMAGE_RULES', 'the image is 32x32'))).toBe(
      'the API refused it: IMAGE_RULES: the image is 32x32',
    );
    expect(explain(new CliError('no API address'))).toBe('no API address');
  });

  it('names the address it could not reach, and leaves unexpected errors (bugs) to their stack', () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
    expect(explain(refused, 'http://127.0.0.1:1')).toBe(
      'cannot reach the API at http://127.0.0.1:1 (ECONNREFUSED); check CXR_URL or run cxr login',
    );
    expect(explain(new RangeError('a bug'))).toBeUndefined();
  });
});
