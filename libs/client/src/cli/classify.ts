// Classifies many files, a few at a time. Each file's Idempotency-Key comes from its bytes (the
// client's default), so running it again after an interruption answers the requests made before
// instead of making new ones: nothing is lost and nothing doubled.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CxrApiError, type ClassificationRequest, type ClassifyTarget, type CxrClient } from '../cxr-client';
import { unreachable } from './errors';
import type { ResultRow } from './output';

export interface ClassifyRun {
  client: CxrClient;
  files: string[];
  target: ClassifyTarget;
  concurrency: number;
  /** Seconds to wait for each request's outcome. */
  wait: number;
  /** Given to every request: where its outcome is POSTed. */
  callbackUrl?: string;
  /** Aborted: no new files are sent, and those in flight are abandoned (marked interrupted). */
  signal: AbortSignal;
  onRow?: (row: ResultRow) => void;
}

/** Answers that say the whole run cannot go on (the key, the target), not just one image. */
const FATAL_STATUS = new Set([401, 403, 404]);
/** Answers and network errors worth another try, after a pause: busy or briefly away. */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const ATTEMPTS = 6;

/** The rows of the files that were started, in the order of `files`; throws on an error that stops the run. */
export async function classifyFiles(run: ClassifyRun): Promise<ResultRow[]> {
  const rows = new Array<ResultRow | undefined>(run.files.length);
  let next = 0;
  let fatal: Error | undefined;
  const stop = new AbortController();
  const signal = AbortSignal.any([run.signal, stop.signal]);
  const worker = async () => {
    while (!signal.aborted && next < run.files.length) {
      const index = next++;
      const path = run.files[index] as string;
      try {
        rows[index] = await classifyOne(run, path, signal);
      } catch (error) {
        fatal ??= error instanceof Error ? error : new Error(String(error));
        stop.abort();
        return;
      }
      run.onRow?.(rows[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, run.concurrency) }, worker));
  if (fatal !== undefined) throw fatal;
  return rows.filter((row): row is ResultRow => row !== undefined);
}

async function classifyOne(run: ClassifyRun, path: string, signal: AbortSignal): Promise<ResultRow> {
  const row: ResultRow = {
    path,
    request_id: null,
    state: 'error',
    label: null,
    score: null,
    error_code: null,
    error_message: null,
  };
  let image: Buffer;
  try {
    image = await readFile(path);
  } catch (error) {
    return { ...row, error_code: 'READ', error_message: (error as Error).message };
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const request = await run.client.classify(image, run.target, {
        wait: run.wait,
        signal,
        // This loop retries (after Retry-After when there is one): no second loop inside it.
        retries: 0,
        ...(run.callbackUrl !== undefined && { callbackUrl: run.callbackUrl }),
      });
      return { ...row, ...outcome(request) };
    } catch (error) {
      if (signal.aborted) return { ...row, state: 'interrupted' };
      const status = error instanceof CxrApiError ? error.status : undefined;
      if (status !== undefined && FATAL_STATUS.has(status)) throw error;
      const retryable = (status !== undefined && RETRYABLE_STATUS.has(status)) || unreachable(error) !== undefined;
      if (retryable && attempt < ATTEMPTS) {
        // The gateway's Retry-After when it sent one, else 0.5, 1, 2, 4, 8 s: the key makes a
        // retry of a submission that did get through harmless.
        const retryAfter = error instanceof CxrApiError ? error.retryAfterSeconds : undefined;
        const pause = retryAfter !== undefined ? retryAfter * 1000 : 500 * 2 ** (attempt - 1);
        const paused = await sleep(pause, true, { signal }).catch(() => false);
        if (!paused) return { ...row, state: 'interrupted' };
        continue;
      }
      if (unreachable(error) !== undefined) throw error;
      if (error instanceof CxrApiError) return { ...row, error_code: error.code, error_message: error.message };
      throw error;
    }
  }
}

function outcome(request: ClassificationRequest): Partial<ResultRow> {
  const base = { request_id: request.id };
  if (request.state === 'classified') {
    return { ...base, state: 'classified', label: request.result?.label ?? null, score: request.result?.score ?? null };
  }
  if (request.state === 'failed') {
    const last = request.errors.at(-1);
    return { ...base, state: 'failed', error_code: last?.code ?? null, error_message: last?.message ?? null };
  }
  return { ...base, state: 'pending', error_message: `still ${request.state} when the wait ran out` };
}

export interface Summary {
  classified: number;
  failed: number;
  errors: number;
  pending: number;
  interrupted: number;
  /** Images never sent (Ctrl-C or a stop before their turn). */
  skipped: number;
}

export function summarize(rows: ResultRow[], total: number): Summary {
  const count = (state: ResultRow['state']) => rows.filter((row) => row.state === state).length;
  return {
    classified: count('classified'),
    failed: count('failed'),
    errors: count('error'),
    pending: count('pending'),
    interrupted: count('interrupted'),
    skipped: total - rows.length,
  };
}
