import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectNotFoundError, ObjectTooLargeError } from '@cxr/storage';
import { createTestBucket, type TestBucket } from '../support/stack';

// Real servers: jest's 5 s default is too short for a slow or loaded machine.
jest.setTimeout(60_000);

function chunkedStream(total: number, chunk: number, hash: ReturnType<typeof createHash>): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return this.push(null);
      const piece = randomBytes(Math.min(chunk, total - sent));
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}

describe('S3 server through the object store', () => {
  let t: TestBucket;
  beforeAll(async () => {
    t = await createTestBucket();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('streams a 10 MB object in and out without holding it whole, then deletes it', async () => {
    const size = 10 * 1024 * 1024;
    const sent = createHash('sha256');
    // Unknown length: goes through multipart upload, one part in memory at a time.
    await t.store.put('blobs/ten-mb', chunkedStream(size, 256 * 1024, sent), {
      contentType: 'application/octet-stream',
    });

    const { stream, size: stored } = await t.store.getStream('blobs/ten-mb');
    expect(stored).toBe(size);
    const received = createHash('sha256');
    let count = 0;
    for await (const piece of stream) {
      received.update(piece as Buffer);
      count += (piece as Buffer).length;
    }
    expect(count).toBe(size);
    expect(received.digest('hex')).toBe(sent.digest('hex'));

    await t.store.delete('blobs/ten-mb');
    await expect(t.store.getStream('blobs/ten-mb')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('puts a buffer with metadata and refuses to read more than asked', async () => {
    const body = randomBytes(4096);
    await t.store.put('small', body, { contentType: 'image/png' });
    expect((await t.store.getBuffer('small', 4096)).equals(body)).toBe(true);
    await expect(t.store.getBuffer('small', 100)).rejects.toBeInstanceOf(ObjectTooLargeError);
    expect(await t.store.listKeys('sm')).toEqual(['small']);
  });

  it("signs the caller's SHA-256 as the payload hash, and the server refuses a body that does not match it", async () => {
    const body = randomBytes(64 * 1024);
    const sha256 = createHash('sha256').update(body).digest('hex');
    await t.store.put('hashed', body, { contentType: 'image/png', sha256 });
    expect((await t.store.getBuffer('hashed', body.length)).equals(body)).toBe(true);

    const other = createHash('sha256').update('another body').digest('hex');
    await expect(t.store.put('mismatched', body, { contentType: 'image/png', sha256: other })).rejects.toThrow(
      /sha256|content|checksum|digest/i,
    );
    await expect(t.store.getStream('mismatched')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(t.store.put('bad', body, { contentType: 'image/png', sha256: 'not-hex' })).rejects.toThrow(TypeError);
  });
});
