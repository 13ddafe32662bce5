import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './errors';
import { discoverImages, isImagePath } from './files';

describe('discoverImages', () => {
  it('walks folders recursively for PNG and JPEG files, sorted, each once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cxr-files-'));
    mkdirSync(join(root, 'z', 'deep'), { recursive: true });
    mkdirSync(join(root, 'a'));
    for (const name of ['z/deep/3.PNG', 'a/2.jpeg', 'a/1.jpg', 'b.png', 'notes.txt', 'a/scan.dcm']) {
      writeFileSync(join(root, name), '');
    }
    const found = await discoverImages([root, join(root, 'b.png'), join(root, 'notes.txt')]);
    expect(found).toEqual(
      ['a/1.jpg', 'a/2.jpeg', 'b.png', 'notes.txt', 'z/deep/3.PNG'].map((name) => join(root, name)),
    );
  });

  it('says which path does not exist', async () => {
    await expect(discoverImages(['/nonexistent/scans'])).rejects.toThrow(
      new CliError('/nonexistent/scans: no such file or folder'),
    );
  });

  it('knows images by extension, in any case', () => {
    expect(['x.png', 'x.JPG', 'x.jpeg'].every(isImagePath)).toBe(true);
    expect(['x.gif', 'x.png.txt', 'png'].some(isImagePath)).toBe(false);
  });
});
