// Where the CLI finds the API: CXR_URL and CXR_API_KEY, or the file `cxr login` writes
// ($XDG_CONFIG_HOME/cxr/config.json, else ~/.config/cxr/config.json), mode 600. The environment wins.
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from './errors';

export interface CliConfig {
  url: string;
  apiKey: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'cxr', 'config.json');
}

/** The config file's settings, or {} when there is none; refuses a file others can read. */
export async function readConfigFile(path: string): Promise<Partial<CliConfig>> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  if ((mode & 0o077) !== 0) {
    throw new CliError(
      `${path} can be read by other users (mode ${(mode & 0o777).toString(8)}); it holds an API key: run chmod 600 ${path}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw new CliError(`${path} is not valid JSON; run cxr login to write it again`);
  }
  const config = (parsed ?? {}) as Record<string, unknown>;
  return {
    ...(typeof config.url === 'string' && { url: config.url }),
    ...(typeof config.apiKey === 'string' && { apiKey: config.apiKey }),
  };
}

/** Writes the file with mode 600 (its folder 700), whatever the umask. */
export async function writeConfigFile(path: string, config: CliConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const file = await open(path, 'w', 0o600);
  try {
    await file.chmod(0o600); // an existing file keeps its mode on open
    await file.writeFile(`${JSON.stringify(config, null, 2)}\n`);
  } finally {
    await file.close();
  }
  await chmod(path, 0o600);
}

/** The settings: each of CXR_URL and CXR_API_KEY from the environment, else from the file. */
export async function loadCliConfig(env: NodeJS.ProcessEnv = process.env): Promise<CliConfig> {
  const path = configPath(env);
  const needsFile = !env.CXR_URL || !env.CXR_API_KEY;
  const file = needsFile ? await readConfigFile(path) : {};
  const url = env.CXR_URL || file.url;
  const apiKey = env.CXR_API_KEY || file.apiKey;
  if (!url || !apiKey) {
    throw new CliError(`no ${url ? 'API key' : 'API address'}: run cxr login, or set CXR_URL and CXR_API_KEY`);
  }
  return { url, apiKey };
}
