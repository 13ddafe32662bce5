import type { Multipart, MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { badRequest, HttpError, tooLarge } from '../errors';

export interface MultipartReaderOptions {
  limits: { files: number; fields: number; parts: number; fileSize: number; fieldSize?: number };
  /** What the form takes, for the messages: "one file, in the file field 'image'". */
  form: string;
  /** The answer when a file is over `limits.fileSize`. */
  tooLargeMessage: string;
  /** How long the client may send nothing while the form is being read (408 after it). */
  idleMs: number;
  /**
   * How long the parser may hand over nothing while it holds body bytes it has not parsed:
   * busboy can stop for good on a malformed body that has arrived whole (a part without a
   * Content-Disposition), where no request timeout applies any more.
   */
  stallMs?: number;
}

export const MALFORMED_MULTIPART = 'MALFORMED_MULTIPART';
const CHECK_EVERY_MS = 250;

/** Errors of busboy and its parts that mean the body is not well-formed multipart. */
const PARSER_ERRORS: [RegExp, string][] = [
  [/Boundary not found/, "the Content-Type has no boundary: send 'multipart/form-data; boundary=…'"],
  [/needle cannot have a length bigger/, 'the multipart boundary is longer than 256 characters'],
  [/Unexpected end of multipart data|terminated early/, 'the body ended before the closing multipart boundary'],
  [/Unsupported Content-Type|Missing Content-Type/, 'the Content-Type is not multipart/form-data'],
];

/**
 * Reads a multipart form with a bound on every wait: the next part and each file's bytes
 * arrive, or the request ends with 400 (a body the parser cannot get through) or 408 (a client
 * that stopped sending). Parser and limit errors become 400/413 answers that say what is
 * wrong; errors that are not the client's (a full disk) pass through unchanged.
 */
export class MultipartReader {
  private readonly parts: AsyncIterator<Multipart>;
  private readonly failed: Promise<never>;
  private fail!: (error: HttpError) => void;
  private timer: NodeJS.Timeout | undefined;
  private file: MultipartFile | undefined;
  private seen = 0;
  private mark = -1;
  private lastProgress = 0;
  private done = false;

  constructor(
    private readonly request: FastifyRequest,
    private readonly options: MultipartReaderOptions,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    this.failed.catch(() => undefined);
    this.parts = request.parts({ limits: options.limits })[Symbol.asyncIterator]();
  }

  /** The next part, or null after the last one. */
  async next(): Promise<Multipart | null> {
    this.file = undefined;
    const step = await this.guard(this.parts.next());
    if (step.done) {
      this.done = true;
      return null;
    }
    this.seen += 1;
    return step.value;
  }

  /** Runs what consumes a file part (its stream must be read to the end) under the same bounds. */
  async read<T>(part: MultipartFile, work: (part: MultipartFile) => Promise<T>): Promise<T> {
    this.file = part;
    try {
      return await this.guard(work(part));
    } finally {
      this.file = undefined;
    }
  }

  /**
   * Stops the watch. A body left unread (the form was refused early) is drained and dropped, so
   * the connection can carry the next request; its end is bounded by the server's requestTimeout.
   */
  close(): void {
    this.unwatch();
    const raw = this.request.raw;
    if (!this.done && !raw.readableEnded && !raw.destroyed) {
      raw.unpipe();
      raw.resume();
    }
  }

  private async guard<T>(work: Promise<T>): Promise<T> {
    this.watch();
    try {
      return await Promise.race([work, this.failed]);
    } catch (error) {
      throw this.translate(error);
    } finally {
      this.unwatch();
    }
  }

  private watch(): void {
    this.mark = -1;
    this.progress();
    this.timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  private unwatch(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether bytes moved since the last look: off the socket, into the file being read, or as a new part. */
  private progress(): boolean {
    const mark = (this.request.raw.socket?.bytesRead ?? 0) + (this.file?.file.bytesRead ?? 0) + this.seen;
    if (mark === this.mark) return false;
    this.mark = mark;
    this.lastProgress = Date.now();
    return true;
  }

  private check(): void {
    if (this.progress()) return;
    const file = this.file?.file;
    // Our side is slow to read the file (a slow disk): not the client's fault; handlerTimeout bounds it.
    if (file && file.readableLength >= file.readableHighWaterMark) return;
    const raw = this.request.raw;
    // The parser has bytes it does not take: all of the body is in, or it stopped reading.
    const parserHolds = raw.complete || (raw.readableFlowing === false && raw.readableLength > 0);
    const limit = parserHolds ? (this.options.stallMs ?? 3_000) : this.options.idleMs;
    if (Date.now() - this.lastProgress < limit) return;
    this.unwatch();
    this.file?.file.destroy();
    this.fail(
      parserHolds
        ? badRequest(
            'the multipart body could not be read to its end: every part needs a ' +
              '\'Content-Disposition: form-data; name="..."\' header, and the body ends with the closing boundary',
            MALFORMED_MULTIPART,
          )
        : new HttpError(
            408,
            'REQUEST_TIMEOUT',
            `no byte of the body arrived for ${Math.round(limit / 1000)} s; the request is dropped`,
          ),
    );
  }

  private translate(error: unknown): unknown {
    if (error instanceof HttpError) return error;
    const { code, message, statusCode } = error as { code?: string; message?: string; statusCode?: number };
    const { form } = this.options;
    switch (code) {
      case 'FST_REQ_FILE_TOO_LARGE':
        return tooLarge(this.options.tooLargeMessage);
      case 'FST_FILES_LIMIT':
        return badRequest(`too many files; this form takes ${form}`);
      case 'FST_FIELDS_LIMIT':
        return badRequest(`too many fields; this form takes ${form}`);
      case 'FST_PARTS_LIMIT':
        return badRequest(`too many parts; this form takes ${form}`);
      case 'FST_INVALID_JSON_FIELD_ERROR':
        return badRequest('a field sent as application/json is not valid JSON');
      case 'FST_PROTO_VIOLATION':
        return badRequest('a field name is a reserved name (like __proto__)');
      case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
        return badRequest(`send multipart/form-data; this form takes ${form}`);
    }
    for (const [pattern, explanation] of PARSER_ERRORS) {
      if (pattern.test(message ?? ''))
        return badRequest(`malformed multipart body: ${explanation}`, MALFORMED_MULTIPART);
    }
    const raw = this.request.raw;
    if (raw.destroyed || (raw as { aborted?: boolean }).aborted) {
      // The client went away mid-body; nobody reads this answer, but it is not a server fault.
      return badRequest('the request body was cut off', MALFORMED_MULTIPART);
    }
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      return new HttpError(statusCode, code ?? 'BAD_REQUEST', message ?? 'bad multipart body');
    }
    return error;
  }
}
