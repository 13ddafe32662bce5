import { fork } from 'node:child_process';
import { extname, join } from 'node:path';
import type { InputSpec } from '@cxr/contracts';
import { unprocessable } from '../errors';
import type { CheckedModel, CheckOutcome, CheckRequest } from './model-check-process';

export type { CheckedModel } from './model-check-process';

/**
 * Loads an uploaded ONNX file the way the inference service will and runs it once on a blank
 * image of the declared input size, in a child process with a time limit, so a huge or slow
 * model never stalls the gateway. Rejections say what is wrong in terms the uploader can fix.
 */
export async function checkModelFile(
  path: string,
  labels: string[],
  spec: InputSpec,
  timeoutMs: number,
): Promise<CheckedModel> {
  // The child runs the same way as this file: TypeScript through tsx, or compiled JavaScript.
  const file = join(__dirname, `model-check-process${extname(__filename)}`);
  const child = fork(file, [], {
    execArgv: extname(file) === '.ts' ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-500);
  });
  try {
    const outcome = await new Promise<CheckOutcome>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            unprocessable(`the model did not load and run once within ${timeoutMs / 1000} s`, 'MODEL_CHECK_TIMEOUT'),
          ),
        timeoutMs,
      );
      child.once('message', (message: CheckOutcome) => {
        clearTimeout(timer);
        resolve(message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          unprocessable(
            `ONNX Runtime stopped while checking the model (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').pop() ?? ''}`,
            'MODEL_CHECK_FAILED',
          ),
        );
      });
      child.send({ path, labels, spec } satisfies CheckRequest);
    });
    if (!outcome.ok) throw unprocessable(outcome.message, outcome.code);
    return outcome.model;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
