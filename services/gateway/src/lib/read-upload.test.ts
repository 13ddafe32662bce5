import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { readUpload } from './read-upload';

function chunks(bytes: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
}

describe('readUpload', () => {
  const body = randomBytes(300_000);

  it('reads every byte in order when the size hint is an upper bound', async () => {
    const read = await readUpload(chunks(body, 16_384), body.length + 200, 1_000_000);
    expect(read.equals(body)).toBe(true);
  });

  it('grows past a hint that is too small, or without one', async () => {
    expect((await readUpload(chunks(body, 10_000), 1_000, 1_000_000)).equals(body)).toBe(true);
    expect((await readUpload(chunks(body, 7_777), undefined, 1_000_000)).equals(body)).toBe(true);
  });

  it('reads an empty stream as an empty buffer', async () => {
    expect((await readUpload(Readable.from([]), 500, 1_000)).length).toBe(0);
  });
});
