// Errors a user can fix, told as what is wrong and what to do, without a stack trace.
import { CxrApiError } from '../cxr-client';

/** An expected error: its message is the whole story for the user. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    /** The process's exit code. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** What to tell the user about an error, or undefined for an unexpected one (a bug: show its stack). */
export function explain(error: unknown, baseUrl?: string): string | undefined {
  if (error instanceof CliError) return error.message;
  if (error instanceof CxrApiError) {
    const said = error.message.replace(/^\d+ \S+: /, ''); // the API's own words, without "404 NOT_FOUND: "
    if (error.status === 401) return 'the API key is not valid; run cxr login or set CXR_API_KEY';
    if (error.status === 403) return `not allowed: ${said} (datasets and models can be changed by their owner only)`;
    if (error.status === 404) return `not found: ${said}; check the id (cxr datasets list, cxr models list)`;
    return `the API refused it: ${error.code}: ${said}`;
  }
  const cause = unreachable(error);
  if (cause) return `cannot reach the API at ${baseUrl ?? 'CXR_URL'} (${cause}); check CXR_URL or run cxr login`;
  return undefined;
}

/** The network error's code (ECONNREFUSED…) when fetch could not reach the server, else undefined. */
export function unreachable(error: unknown): string | undefined {
  if (!(error instanceof TypeError) || error.message !== 'fetch failed') return undefined;
  const cause = (error as TypeError & { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return typeof cause?.message === 'string' ? cause.message : 'network error';
}
