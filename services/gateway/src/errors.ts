/** An error whose message is safe to show the client, with the HTTP status it maps to. */
export class HttpError extends Error {
  override readonly name: string = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, code = 'BAD_REQUEST') => new HttpError(400, code, message);
export const unauthorized = (message: string) => new HttpError(401, 'UNAUTHORIZED', message);
export const forbidden = (message: string) => new HttpError(403, 'FORBIDDEN', message);
export const notFound = (what: string) => new HttpError(404, 'NOT_FOUND', `${what} not found`);
export const conflict = (message: string) => new HttpError(409, 'CONFLICT', message);
export const tooLarge = (message: string) => new HttpError(413, 'TOO_LARGE', message);
export const unsupportedMedia = (message: string) => new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', message);
export const unprocessable = (message: string, code = 'UNPROCESSABLE') => new HttpError(422, code, message);
export const unavailable = (message: string) => new HttpError(503, 'UNAVAILABLE', message);

/** What the driver, the S3 client or the socket throws when a dependency cannot be reached. */
export interface DependencyError extends Error {
  code?: string;
  /** The AWS SDK's: 'server' for a 5xx from S3. */
  $fault?: string;
  /** The AWS SDK's, on every error of an S3 call (attempts made). */
  $metadata?: unknown;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/**
 * The 503 for an error that says a dependency cannot be reached (retry later, the request was
 * fine), naming the database or the object store; null for any other error.
 */
export function outageOf(error: DependencyError): HttpError | null {
  if (/^Mongo(ServerSelection|Network|NetworkTimeout|NotConnected)Error$/.test(error.name)) {
    return unavailable('the database (MongoDB) cannot be reached; try again shortly');
  }
  const network = NETWORK_CODES.has(error.code ?? '');
  if (error.$metadata !== undefined && (network || error.$fault === 'server')) {
    return unavailable('the object store (S3) cannot be reached; try again shortly');
  }
  if (network) return unavailable('a service the gateway depends on cannot be reached; try again shortly');
  return null;
}
