import { readFileSync } from 'node:fs';

/** KEY='value' lines of the stack's env files (stack.env, app-secrets.env), as infra/stack.sh quotes them. */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1').replace(/'\\''/g, "'");
  }
  return out;
}
