import { randomBytes } from 'node:crypto';

/** The W3C trace context of one span: what a `traceparent` header carries. */
export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the span this one continues from. */
  spanId: string;
  /** Bit 0: sampled. */
  flags: number;
}

/** The AMQP header and HTTP header that carry it. */
export const TRACEPARENT = 'traceparent';

const FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Reads a `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header); null for
 * anything malformed, version ff, or an all-zero id, as the spec says to ignore those.
 */
export function parseTraceparent(value: unknown): TraceContext | null {
  if (typeof value !== 'string' || value.length > 512) return null;
  const match = FORMAT.exec(value.trim());
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null;
  return { traceId, spanId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${(context.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * Ids come from a pool of random bytes refilled 4 KiB at a time (as crypto.randomUUID does): a
 * request takes two, and one getrandom call each was a visible part of a shed request's cost.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let taken = POOL_BYTES;

function randomHex(bytes: number): string {
  if (taken + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    taken = 0;
  }
  taken += bytes;
  return pool.toString('hex', taken - bytes, taken);
}

export function newSpanId(): string {
  return randomHex(8);
}

/** A new span: a child of `parent` (same trace), or the root of a new, sampled trace. */
export function childOf(parent: TraceContext | null): TraceContext {
  return parent
    ? { traceId: parent.traceId, spanId: newSpanId(), flags: parent.flags }
    : { traceId: randomHex(16), spanId: newSpanId(), flags: 1 };
}
