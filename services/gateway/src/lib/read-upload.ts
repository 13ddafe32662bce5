import type { Readable } from 'node:stream';

/**
 * Reads an uploaded file into one buffer, copying each chunk as it arrives. Keeping the chunks
 * for a concat at the end (what `toBuffer()` does) keeps every socket buffer alive until then,
 * and on images of several MB that costs the collector more than the copy. `sizeHint` (the
 * request's Content-Length, an upper bound of the file in it) sizes the buffer; without one it
 * grows by doubling. At most `maxBytes` are kept: the caller checks the stream's own limit.
 */
export async function readUpload(stream: Readable, sizeHint: number | undefined, maxBytes: number): Promise<Buffer> {
  let whole = Buffer.allocUnsafe(Math.max(1, Math.min(sizeHint ?? 64 * 1024, maxBytes)));
  let at = 0;
  for await (const chunk of stream) {
    const piece = chunk as Buffer;
    if (at + piece.length > whole.length) {
      const grown = Buffer.allocUnsafe(Math.max(at + piece.length, Math.min(whole.length * 2, maxBytes)));
      whole.copy(grown, 0, 0, at);
      whole = grown;
    }
    piece.copy(whole, at);
    at += piece.length;
  }
  return whole.subarray(0, at);
}
