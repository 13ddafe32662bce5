import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { SpooledUpload } from './upload-spool';

function chunks(bytes: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

describe('SpooledUpload', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const body = randomBytes(700_000);

  it('keeps every byte in order, its size, its SHA-256 and its head, in a file with no name', async () => {
    const upload = await SpooledUpload.from(chunks(body, 16_384), { dir, headBytes: 1000, writeBytes: 50_000 });
    try {
      expect(readdirSync(dir)).toEqual([]);
      expect(upload.size).toBe(body.length);
      expect(upload.sha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(upload.head.equals(body.subarray(0, 1000))).toBe(true);
      // Each stream starts again from the first byte (a retried put reads it all again).
      expect((await readAll(upload.stream())).equals(body)).toBe(true);
      expect((await readAll(upload.stream())).equals(body)).toBe(true);
    } finally {
      await upload.close();
    }
  });

  it('reads a prefix longer than its head from the file, and never past the end', async () => {
    const upload = await SpooledUpload.from(chunks(body, 7_777), { dir, headBytes: 100 });
    try {
      expect((await upload.prefix(50)).equals(body.subarray(0, 50))).toBe(true);
      expect((await upload.prefix(300_000)).equals(body.subarray(0, 300_000))).toBe(true);
      expect((await upload.prefix(5_000_000)).equals(body)).toBe(true);
    } finally {
      await upload.close();
    }
  });

  it('holds a short upload whole in its head, and an empty one as empty', async () => {
    const short = await SpooledUpload.from(Readable.from([Buffer.from('abc')]), { dir, headBytes: 1000 });
    expect(short.head.toString()).toBe('abc');
    expect(await text(short.stream())).toBe('abc');
    await short.close();
    const empty = await SpooledUpload.from(Readable.from([]), { dir, headBytes: 1000 });
    expect([empty.size, empty.head.length]).toEqual([0, 0]);
    await empty.close();
  });

  it('passes on the stream error and leaves nothing in its folder', async () => {
    const failing = new Readable({
      read() {
        this.push(body.subarray(0, 10_000));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(SpooledUpload.from(failing, { dir, headBytes: 100 })).rejects.toThrow('client went away');
    expect(readdirSync(dir)).toEqual([]);
  });
});
