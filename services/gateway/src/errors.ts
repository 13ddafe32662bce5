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
