/** What `waitFor` throws when the condition did not hold in time. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

function show(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(value);
  }
}

/**
 * Polls `probe` until `ok` holds and returns that value; throws a WaitTimeoutError, naming
 * `what`, how long it waited and the last value seen, if that takes longer than `ms`. An error
 * thrown by `probe` ends the wait at once. There is no quiet timeout: a caller never has to
 * check what it got back.
 */
export async function waitFor<T, U extends T>(
  what: string,
  probe: () => T | Promise<T>,
  ok: (value: T) => value is U,
  ms?: number,
): Promise<U>;
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  ok?: (value: T) => boolean,
  ms?: number,
): Promise<T>;
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  ok: (value: T) => boolean = Boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) {
      throw new WaitTimeoutError(`timed out after ${ms} ms waiting for ${what}; last value: ${show(value)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
