import { createHash, randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface SpoolOptions {
  /** Where a spilled upload's file is made; it is unlinked at once, so nothing stays there whatever ends the process. */
  dir: string;
  /** The most bytes held in memory: a larger upload goes to a file, written in pieces of this size. */
  memoryBytes: number;
  /** How many of the first bytes stay readable in memory (`head`) when the upload goes to a file; at most `memoryBytes`. */
  headBytes: number;
  /** The upload's size if known, or an upper bound of it (a request's Content-Length): sizes the first buffer. */
  sizeHint?: number;
}

/**
 * An upload read to its end and hashed on the way, held in memory up to `memoryBytes` and in a
 * file beyond that, so one upload costs the process at most `memoryBytes` (plus `headBytes`)
 * whatever its size. The file has no name (unlinked as soon as it is opened): a crash or a
 * SIGKILL leaves nothing behind, and the open handle is the only way to it until `close()`.
 * Small uploads, the common case, never touch the disk: writing and reading back costs more CPU
 * than the copy (about 10 ms per 3 MB image here).
 */
export class SpooledUpload {
  private constructor(
    /** The file holding the upload, when it did not stay in memory. */
    private readonly file: FileHandle | null,
    /** Bytes in the upload. */
    readonly size: number,
    /** SHA-256 of the whole upload, lowercase hex. */
    readonly sha256: string,
    /** The first bytes: the whole upload when it stayed in memory, else its first `headBytes`. */
    readonly head: Buffer,
  ) {}

  /** Reads `stream` to its end. On any error a file it made is closed (and so gone). */
  static async from(stream: Readable, options: SpoolOptions): Promise<SpooledUpload> {
    const { memoryBytes } = options;
    const hash = createHash('sha256');
    let buffer = Buffer.allocUnsafe(Math.max(1, Math.min(options.sizeHint ?? 64 * 1024, memoryBytes)));
    let length = 0;
    let file: FileHandle | null = null;
    let written = 0;
    let head = Buffer.alloc(0);
    try {
      // Writes what the buffer holds to the file (made on the first spill), and empties the buffer.
      const spill = async () => {
        if (!file) {
          head = Buffer.from(buffer.subarray(0, Math.min(length, options.headBytes)));
          const path = join(options.dir, `cxr-upload-${randomUUID()}`);
          file = await open(path, 'wx+', 0o600);
          await unlink(path);
        }
        for (let at = 0; at < length;) {
          const { bytesWritten } = await file.write(buffer, at, length - at, written);
          at += bytesWritten;
          written += bytesWritten;
        }
        length = 0;
      };
      for await (const chunk of stream) {
        const piece = chunk as Buffer;
        hash.update(piece);
        for (let at = 0; at < piece.length;) {
          if (length === buffer.length) {
            if (!file && buffer.length < memoryBytes) {
              const grown = Buffer.allocUnsafe(
                Math.min(Math.max(buffer.length * 2, length + piece.length - at), memoryBytes),
              );
              buffer.copy(grown, 0, 0, length);
              buffer = grown;
            } else {
              await spill();
            }
          }
          const copied = piece.copy(buffer, length, at);
          length += copied;
          at += copied;
        }
      }
      if (!file) {
        return new SpooledUpload(null, length, hash.digest('hex'), buffer.subarray(0, length));
      }
      await spill();
      return new SpooledUpload(file, written, hash.digest('hex'), head);
    } catch (error) {
      await (file as FileHandle | null)?.close().catch(() => undefined);
      throw error;
    }
  }

  /** Whether the upload went to a file. */
  get spilled(): boolean {
    return this.file !== null;
  }

  /** Up to `length` bytes from the start (from the head when it holds them, else read from the file). */
  async prefix(length: number): Promise<Buffer> {
    const wanted = Math.min(length, this.size);
    if (wanted <= this.head.length || !this.file) return this.head.subarray(0, wanted);
    const bytes = Buffer.allocUnsafe(wanted);
    let at = 0;
    while (at < wanted) {
      const { bytesRead } = await this.file.read(bytes, at, wanted - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return bytes.subarray(0, at);
  }

  /** The whole upload: the buffer, or a new stream from the file's first byte (the file stays open). */
  body(): Buffer | Readable {
    return this.file
      ? this.file.createReadStream({ start: 0, autoClose: false, highWaterMark: 1024 * 1024 })
      : this.head;
  }

  /** Frees the file, if there is one. */
  async close(): Promise<void> {
    await this.file?.close();
  }
}
