// Reads a secret: from the terminal without echoing it, or the first line of stdin when piped.
import { createInterface } from 'node:readline';
import { CliError } from './errors';

export async function readSecret(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    const lines = createInterface({ input });
    for await (const line of lines) {
      lines.close();
      return line.trim();
    }
    return '';
  }
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  let secret = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n' || char === '\u0004') {
            input.off('data', onData);
            resolve();
            return;
          }
          if (char === '\u0003') {
            input.off('data', onData);
            reject(new CliError('interrupted', 130));
            return;
          }
          if (char === '\u007f' || char === '\b') secret = secret.slice(0, -1);
          else secret += char;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
  return secret.trim();
}
