import { chmodSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, loadCliConfig, readConfigFile, writeConfigFile } from './config';

describe('the config file', () => {
  let home: string;
  let path: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'cxr-config-'));
    path = configPath({ XDG_CONFIG_HOME: home });
  });

  it('lives under XDG_CONFIG_HOME, else ~/.config', () => {
    expect(path).toBe(join(home, 'cxr', 'config.json'));
    expect(configPath({ HOME: '/home/x' })).toMatch(/\.config\/cxr\/config\.json$/);
  });

  it('is written with mode 600, even over a file that was readable, and read back', async () => {
    mkdirSync(join(home, 'cxr'));
    writeFileSync(path, '{}', { mode: 0o644 });
    await writeConfigFile(path, { url: 'http://cxr.test', apiKey: 'cxr_secret' });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await expect(readConfigFile(path)).resolves.toEqual({ url: 'http://cxr.test', apiKey: 'cxr_secret' });
  });

  it('is refused when group or others can read it, saying how to fix it', async () => {
    await writeConfigFile(path, { url: 'http://cxr.test', apiKey: 'cxr_secret' });
    chmodSync(path, 0o640);
    await expect(readConfigFile(path)).rejects.toThrow(
      `${path} can be read by other users (mode 640); it holds an API key: run chmod 600 ${path}`,
    );
  });

  it('counts as empty when missing, and says so when it is not JSON', async () => {
    await expect(readConfigFile(path)).resolves.toEqual({});
    mkdirSync(join(home, 'cxr'));
    writeFileSync(path, 'url=x', { mode: 0o600 });
    await expect(readConfigFile(path)).rejects.toThrow(`${path} is not valid JSON; run cxr login to write it again`);
  });

  it('gives way to CXR_URL and CXR_API_KEY, each on its own', async () => {
    await writeConfigFile(path, { url: 'http://from-file', apiKey: 'cxr_file' });
    const env = { XDG_CONFIG_HOME: home };
    await expect(loadCliConfig(env)).resolves.toEqual({ url: 'http://from-file', apiKey: 'cxr_file' });
    await expect(loadCliConfig({ ...env, CXR_API_KEY: 'cxr_env' })).resolves.toEqual({
      url: 'http://from-file',
      apiKey: 'cxr_env',
    });
    // Both from the environment: the file is not even read (a bad one does not matter).
    chmodSync(path, 0o644);
    await expect(loadCliConfig({ ...env, CXR_URL: 'http://env', CXR_API_KEY: 'cxr_env' })).resolves.toEqual({
      url: 'http://env',
      apiKey: 'cxr_env',
    });
  });

  it('says what to do when nothing is configured', async () => {
    await expect(loadCliConfig({ XDG_CONFIG_HOME: home })).rejects.toThrow(
      'no API address: run cxr login, or set CXR_URL and CXR_API_KEY',
    );
  });
});
