import { createHash, randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

export interface SpoolOptions {
  /** Where the file is made; it is unlinked at once, so nothing stays there whatever ends the process. */
  dir: string;
  /** How many of the first bytes are also kept in memory, for reading the image's header. */
  headBytes: number;
  /** Bytes gathered before each write to the file (fewer, larger writes through libuv's pool). */
  writeBytes?: number;
}

/**
 * An upload held in a file rather than in memory: its bytes go to disk as they arrive, hashed on
 * the way, so a 17 MB image costs the process at most `headBytes` plus one write buffer, however
 * many arrive at once. The file has no name (unlinked as soon as it is opened), so a crash or a
 * SIGKILL leaves nothing behind; the open handle is the only way to it until `close()`.
 */
export class SpooledUpload {
  private constructor(
    private readonly handle: FileHandle,
    /** Bytes in the upload. */
    readonly size: number,
    /** SHA-256 of the whole upload, lowercase hex. */
    readonly sha256: string,
    /** The first `headBytes` (all of it when shorter). */
    readonly head: Buffer,
  ) {}

  /** Reads `stream` to its end into a new spool file. On any error the file is closed (and gone). */
  static async from(stream: Readable, options: SpoolOptions): Promise<SpooledUpload> {
    const path = join(options.dir, `cxr-upload-${randomUUID()}`);
    const handle = await open(path, 'wx+', 0o600);
    try {
      await unlink(path);
      const hash = createHash('sha256');
      const head = Buffer.allocUnsafe(options.headBytes);
      let headLength = 0;
      const pending = Buffer.allocUnsafe(options.writeBytes ?? 256 * 1024);
      let pendingLength = 0;
      let written = 0;
      const flush = async () => {
        for (let at = 0; at < pendingLength;) {
          const { bytesWritten } = await handle.write(pending, at, pendingLength - at, written);
          at += bytesWritten;
          written += bytesWritten;
        }
        pendingLength = 0;
      };
      for await (const chunk of stream) {
        const piece = chunk as Buffer;
        hash.update(piece);
        if (headLength < head.length) headLength += piece.copy(head, headLength);
        for (let at = 0; at < piece.length;) {
          const copied = piece.copy(pending, pendingLength, at);
          pendingLength += copied;
          at += copied;
          if (pendingLength === pending.length) await flush();
        }
      }
      await flush();
      return new SpooledUpload(handle, written, hash.digest('hex'), head.subarray(0, headLength));
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** Up to `length` bytes from the start (the head when it holds them, else a read of the file). */
  async prefix(length: number): Promise<Buffer> {
    const wanted = Math.min(length, this.size);
    if (wanted <= this.head.length) return this.head.subarray(0, wanted);
    const bytes = Buffer.allocUnsafe(wanted);
    let at = 0;
    while (at < wanted) {
      const { bytesRead } = await this.handle.read(bytes, at, wanted - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
    }
    return bytes.subarray(0, at);
  }

  /** The whole upload from its first byte, as a new stream each call; the file stays open. */
  stream(): Readable {
    return this.handle.createReadStream({ start: 0, autoClose: false });
  }

  /** Frees the file. */
  async close(): Promise<void> {
    await this.handle.close();
  }
}
