import { ROOT_CONTEXT, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { formatTraceparent, type TraceContext } from './traceparent';
import type { Tracer } from './tracer';

/**
 * Spans exported over OTLP/HTTP (JSON) in batches. The exporter reads the standard variables:
 * OTEL_EXPORTER_OTLP_ENDPOINT (its /v1/traces), OTEL_EXPORTER_OTLP_HEADERS, timeouts.
 */
export function otlpTracer(service: string): Tracer {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer('cxr-classify');
  return {
    start(name, parent, attributes) {
      const parentContext: Context = parent
        ? trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.flags,
            isRemote: true,
          })
        : ROOT_CONTEXT;
      const span = tracer.startSpan(name, { attributes }, parentContext);
      const { traceId, spanId, traceFlags } = span.spanContext();
      const context: TraceContext = { traceId, spanId, flags: traceFlags };
      return {
        context,
        traceparent: () => formatTraceparent(context),
        end(outcome = {}) {
          if (outcome.name) span.updateName(outcome.name);
          if (outcome.attributes) span.setAttributes(outcome.attributes);
          if (outcome.failed) {
            if (outcome.failed instanceof Error) span.recordException(outcome.failed);
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        },
      };
    },
    close: () => provider.shutdown(),
  };
}
