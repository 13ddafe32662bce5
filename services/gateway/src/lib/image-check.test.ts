import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { IMAGE_HEAD_BYTES, inspectImage, MAX_IMAGE_HEADER_BYTES } from './image-check';
import { SpooledUpload } from './upload-spool';

const RULES = {
  minWidth: 64,
  minHeight: 64,
  maintainRatio: false,
  ratioTolerance: 0.01,
  maxPixels: 50_000_000,
  maxDecodedBytes: 256 * 1024 * 1024,
};

/** A JPEG with `count` comment segments of 65,000 bytes between its start and its frame header. */
function withComments(jpeg: Buffer, count: number): Buffer {
  const segment = Buffer.alloc(4 + 65_000 - 2, 0x20);
  segment.writeUInt16BE(0xfffe, 0);
  segment.writeUInt16BE(65_000, 2);
  return Buffer.concat([jpeg.subarray(0, 2), ...Array.from({ length: count }, () => segment), jpeg.subarray(2)]);
}

describe('inspectImage on a spooled upload', () => {
  let dir: string;
  let jpeg: Buffer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'image-check-test-'));
    jpeg = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function inspect(bytes: Buffer) {
    const upload = await SpooledUpload.from(Readable.from([bytes]), {
      dir,
      memoryBytes: IMAGE_HEAD_BYTES,
      headBytes: IMAGE_HEAD_BYTES,
    });
    try {
      return await inspectImage(upload, RULES);
    } finally {
      await upload.close();
    }
  }

  it('reads a header that lies in the first bytes kept in memory', async () => {
    await expect(inspect(jpeg)).resolves.toEqual({ format: 'jpeg', width: 300, height: 200 });
  });

  it('reads a header past those first bytes from the file', async () => {
    const far = withComments(jpeg, 6);
    expect(far.length).toBeGreaterThan(IMAGE_HEAD_BYTES);
    await expect(inspect(far)).resolves.toEqual({ format: 'jpeg', width: 300, height: 200 });
  });

  it('refuses a header that reaches past its bound with 415 and says so', async () => {
    const tooFar = withComments(jpeg, 17);
    expect(tooFar.length).toBeGreaterThan(MAX_IMAGE_HEADER_BYTES);
    await expect(inspect(tooFar)).rejects.toMatchObject({
      statusCode: 415,
      message: expect.stringMatching(/header reaches past the first 1048576 bytes/) as unknown,
    });
  });
});
