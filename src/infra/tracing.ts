import { type Attributes, type Context, INVALID_SPAN_CONTEXT, ProxyTracerProvider, type Span, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';

/**
 * Traces through `@opentelemetry/api` only. With no SDK registered (the default: main.ts
 * registers one when OTEL_EXPORTER_OTLP_ENDPOINT is set) every span is a no-op and the context
 * is never stored, so instrumented code costs next to nothing.
 */
const TRACER_NAME = 'book-purchase-broker';

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/** What the API answers with while no SDK is registered: its no-op provider. */
const NO_SDK = new ProxyTracerProvider().getDelegate();
/** A span that records nothing, handed to instrumented code while nothing is traced. */
const NOT_TRACED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Whether an SDK is registered (main.ts with OTEL_EXPORTER_OTLP_ENDPOINT, or a test's in-memory one). */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK;
}

/**
 * Runs `fn` in a new span made active for everything it awaits; the span ends when `fn`
 * settles, and an exception marks it failed. `parent` overrides the active context.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, parent?: Context): Promise<T> {
  // Nothing traced: no span, no context to carry (the partner pipeline runs this for every call).
  if (!tracing()) {
    try {
      return fn(NOT_TRACED);
    } catch (e) {
      return Promise.reject(e);
    }
  }
  return traced(name, attributes, fn, parent);
}

async function traced<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, parent?: Context): Promise<T> {
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
export function traceHeaders(): Readonly<Record<string, string>> {
  if (!tracing()) return NO_HEADERS;
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
