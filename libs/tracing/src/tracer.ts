import { childOf, formatTraceparent, type TraceContext } from './traceparent';

export type SpanAttributes = Record<string, string | number | boolean>;

/** One unit of work (an HTTP request, a job, a result recorded). */
export interface Span {
  /** This span's own context: what the work it causes carries as its parent. */
  readonly context: TraceContext;
  /** `context` as a W3C traceparent header. */
  traceparent(): string;
  /** Ends the span, optionally renamed (once the route is known), failed, with attributes. */
  end(outcome?: SpanEnd): void;
}

export interface SpanEnd {
  name?: string;
  /** An error, or true: the work failed. */
  failed?: unknown;
  attributes?: SpanAttributes;
}

export interface Tracer {
  /** Starts a span under `parent` (from a header), or a new trace when there is none. */
  start(name: string, parent: TraceContext | null, attributes?: SpanAttributes): Span;
  /** Sends what is still buffered; called at shutdown. */
  close(): Promise<void>;
}

/**
 * Runs `work` as `span`'s work: ends the span when it settles, failed with the error it throws
 * (which goes on), or with `attributes` of its result.
 */
export async function inSpan<T>(
  span: Span,
  work: () => Promise<T>,
  attributes?: (result: T) => SpanAttributes,
): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    span.end({ failed: error });
    throw error;
  }
  span.end(attributes ? { attributes: attributes(result) } : undefined);
  return result;
}

/**
 * No exporter: spans are only ids, so a trace id still reaches every log line and message
 * header, at the cost of one random id per span.
 */
export const idsOnlyTracer: Tracer = {
  start(_name, parent) {
    const context = childOf(parent);
    return { context, traceparent: () => formatTraceparent(context), end: () => undefined };
  },
  close: async () => undefined,
};
