// Calls to the API on this origin, with the key the page holds. Busy or briefly unreachable
// answers are retried after the server's Retry-After (a submission with the same
// Idempotency-Key, so a retry never makes a second request); anything else is an ApiError.

/** Answers worth another try after a pause: rate-limited, overloaded or a proxy's hiccup. */
const RETRYABLE = new Set([429, 502, 503, 504]);
/** How long one call keeps retrying before it gives up and says why. */
const RETRY_BUDGET_MS = 5 * 60_000;
/** The longest pause between two tries, whatever Retry-After says. */
const MAX_PAUSE_MS = 30_000;

/** A refusal from the API (or giving up on one): its HTTP status (0 when unreachable) and its message for a person. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

let apiKey = '';

/** The key sent with every call from now on. */
export function useKey(key) {
  apiKey = key;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After in seconds (or an HTTP date), plus up to half a second of jitter so tabs do not retry in step. */
function pauseMs(response, attempt) {
  const header = response?.headers.get('retry-after');
  let seconds = header === null || header === undefined ? NaN : Number(header);
  if (header && Number.isNaN(seconds)) seconds = (Date.parse(header) - Date.now()) / 1000;
  // No usable header (a network error, a proxy's 502): back off 1, 2, 4… s.
  if (!(seconds >= 0)) seconds = 2 ** Math.min(attempt, 5);
  return Math.min(seconds * 1000, MAX_PAUSE_MS) + Math.random() * 500;
}

/**
 * Calls the API; answers the parsed body (null for 204). `onRetry({status, message, pauseMs})`
 * hears of each pause before a retry, so the page can say it is waiting rather than stuck.
 */
export async function api(path, { method = 'GET', headers = {}, body, onRetry } = {}) {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    let response = null;
    let reason;
    try {
      response = await fetch(path, { method, body, headers: { ...headers, authorization: `Bearer ${apiKey}` } });
    } catch (error) {
      reason = `the server cannot be reached (${error.message})`;
    }
    if (response && !RETRYABLE.has(response.status)) {
      const data = response.status === 204 ? null : await response.json().catch(() => null);
      if (response.ok) return data;
      throw new ApiError(response.status, data?.message ?? `the server answered ${response.status}`);
    }
    if (response) {
      const data = await response.json().catch(() => null);
      reason = `${data?.error ?? response.status}: ${data?.message ?? 'the server is busy'}`;
    }
    const pause = pauseMs(response, attempt);
    if (Date.now() + pause - started > RETRY_BUDGET_MS) {
      throw new ApiError(response?.status ?? 0, `${reason}; gave up after ${attempt + 1} tries`);
    }
    onRetry?.({ status: response?.status ?? 0, message: reason, pauseMs: pause });
    await sleep(pause);
  }
}

/** Every item of a paged list (`{items, next}`), following `next` up to `maxPages` pages. */
export async function listAll(path, maxPages = 10) {
  const items = [];
  let before = null;
  for (let page = 0; page < maxPages; page++) {
    const separator = path.includes('?') ? '&' : '?';
    const answer = await api(`${path}${separator}limit=100${before ? `&before=${before}` : ''}`);
    items.push(...answer.items);
    before = answer.next;
    if (!before) break;
  }
  return items;
}
