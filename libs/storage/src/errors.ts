export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  readonly code = 'OBJECT_NOT_FOUND';
  constructor(readonly key: string) {
    super(`object ${key} not found`);
  }
}

export class ObjectTooLargeError extends Error {
  override readonly name = 'ObjectTooLargeError';
  readonly code = 'OBJECT_TOO_LARGE';
  constructor(
    readonly key: string,
    readonly limit: number,
  ) {
    super(`object ${key} is larger than ${limit} bytes`);
  }
}
