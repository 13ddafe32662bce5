import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SpooledUpload } from './upload-spool';

function chunks(bytes: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
}

async function bytesOf(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const pieces: Buffer[] = [];
  for await (const piece of body) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

describe('SpooledUpload', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const body = randomBytes(700_000);
  const sha256 = createHash('sha256').update(body).digest('hex');

  it('holds an upload up to its memory bound in memory, whatever the size hint', async () => {
    for (const sizeHint of [undefined, 1_000, body.length + 200]) {
      const upload = await SpooledUpload.from(chunks(body, 16_384), {
        dir,
        memoryBytes: body.length,
        headBytes: 100,
        sizeHint,
      });
      expect([upload.spilled, upload.size, upload.sha256]).toEqual([false, body.length, sha256]);
      expect(upload.head.equals(body)).toBe(true);
      expect((await bytesOf(upload.body())).equals(body)).toBe(true);
      await upload.close();
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('sends a larger upload to a file with no name, keeping its head and hash', async () => {
    const upload = await SpooledUpload.from(chunks(body, 7_777), { dir, memoryBytes: 50_000, headBytes: 1_000 });
    try {
      expect(readdirSync(dir)).toEqual([]);
      expect([upload.spilled, upload.size, upload.sha256]).toEqual([true, body.length, sha256]);
      expect(upload.head.equals(body.subarray(0, 1_000))).toBe(true);
      // Each body starts again from the first byte (a retried put reads it all again).
      expect((await bytesOf(upload.body())).equals(body)).toBe(true);
      expect((await bytesOf(upload.body())).equals(body)).toBe(true);
    } finally {
      await upload.close();
    }
  });

  it('reads a prefix longer than the head from the file, and never past the end', async () => {
    const upload = await SpooledUpload.from(chunks(body, 10_000), { dir, memoryBytes: 64_000, headBytes: 100 });
    try {
      expect((await upload.prefix(50)).equals(body.subarray(0, 50))).toBe(true);
      expect((await upload.prefix(300_000)).equals(body.subarray(0, 300_000))).toBe(true);
      expect((await upload.prefix(5_000_000)).equals(body)).toBe(true);
    } finally {
      await upload.close();
    }
  });

  it('reads an empty upload as empty', async () => {
    const empty = await SpooledUpload.from(Readable.from([]), { dir, memoryBytes: 1_000, headBytes: 100, sizeHint: 0 });
    expect([empty.size, empty.head.length, empty.spilled]).toEqual([0, 0, false]);
    await empty.close();
  });

  it('passes on the stream error after spilling and leaves nothing in its folder', async () => {
    const failing = new Readable({
      read() {
        this.push(body.subarray(0, 10_000));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(SpooledUpload.from(failing, { dir, memoryBytes: 4_000, headBytes: 100 })).rejects.toThrow(
      'client went away',
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});
