import { type Attributes, type Context, type Span, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';

/**
 * Traces through `@opentelemetry/api` only. With no SDK registered (the default: main.ts
 * registers one when OTEL_EXPORTER_OTLP_ENDPOINT is set) every span is a no-op and the context
 * is never stored, so instrumented code costs next to nothing.
 */
const TRACER_NAME = 'book-purchase-broker';

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/**
 * Runs `fn` in a new span made active for everything it awaits; the span ends when `fn`
 * settles, and an exception marks it failed. `parent` overrides the active context.
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, parent?: Context): Promise<T> {
  const span = tracer().startSpan(name, { attributes }, parent ?? context.active());
  try {
    return await context.with(trace.setSpan(parent ?? context.active(), span), () => fn(span));
  } catch (e) {
    span.recordException(e instanceof Error ? e : new Error(String(e)));
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw e;
  } finally {
    span.end();
  }
}

/** W3C `traceparent` (and `tracestate`) for the active span, to send with an outgoing call; empty when not tracing. */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The active trace's id, for log lines; undefined when not tracing. */
export function activeTraceId(): string | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const ctx = span.spanContext();
  return trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}
