import { otlpTracer } from './otlp';
import { idsOnlyTracer, type Tracer } from './tracer';

export { childOf, formatTraceparent, parseTraceparent, TRACEPARENT } from './traceparent';
export type { TraceContext } from './traceparent';
export { idsOnlyTracer, inSpan } from './tracer';
export type { Span, SpanAttributes, SpanEnd, Tracer } from './tracer';

/**
 * The service's tracer: OpenTelemetry with OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set,
 * ids only otherwise (no SDK objects, nothing buffered or sent).
 */
export function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): Tracer {
  return env.OTEL_EXPORTER_OTLP_ENDPOINT ? otlpTracer(service) : idsOnlyTracer;
}
