// The images to classify: files as given, folders walked recursively for .png, .jpg and .jpeg.
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { CliError } from './errors';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/**
 * Every image under the paths, each once, sorted (so runs see them in the same order). A file named
 * on the command line is taken whatever its extension; in folders, only PNG and JPEG files.
 */
export async function discoverImages(paths: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const path of paths) {
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new CliError(`${path}: no such file or folder`);
    }
    if (info.isDirectory()) for (const file of await walk(path)) found.add(file);
    else found.add(path);
  }
  return [...found].sort();
}

async function walk(folder: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) files.push(...(await walk(path)));
    else if (entry.isFile() && isImagePath(entry.name)) files.push(path);
  }
  return files;
}
