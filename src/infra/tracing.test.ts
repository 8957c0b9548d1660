import { SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, describe, expect, it } from 'vitest';
import { activeTraceId, inSpan, traceHeaders } from './tracing.js';

/**
 * Spans with and without an SDK. This file registers one part-way, so the first block runs with
 * none (as the broker does unless OTEL_EXPORTER_OTLP_ENDPOINT is set) and the second with one.
 */
describe('with no SDK registered', () => {
  it('runs the work with a span that records nothing and passes its result through', async () => {
    const seen = await inSpan('work', { 'broker.test': 1 }, async (span) => {
      span.setAttributes({ 'broker.more': 2 });
      return { recording: span.isRecording(), traceId: activeTraceId(), headers: traceHeaders() };
    });
    expect(seen).toEqual({ recording: false, traceId: undefined, headers: {} });
  });

  it('turns a throw, even before the first await, into the returned promise rejecting', async () => {
    const thrown = inSpan('work', {}, () => {
      throw new Error('broken before it began');
    });
    await expect(thrown).rejects.toThrow('broken before it began');
    await expect(inSpan('work', {}, async () => Promise.reject(new Error('broken later')))).rejects.toThrow('broken later');
  });
});

describe('with an SDK registered', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
  });

  it('records nested spans, carries the context into awaited work and sends it onwards', async () => {
    provider.register();
    const seen = await inSpan('outer', { 'broker.test': 1 }, async () => {
      await Promise.resolve();
      return inSpan('inner', {}, async (span) => ({ recording: span.isRecording(), traceId: activeTraceId(), headers: traceHeaders() }));
    });
    const [inner, outer] = exporter.getFinishedSpans();
    expect(seen.recording).toBe(true);
    expect(seen.traceId).toBe(outer!.spanContext().traceId);
    expect(seen.headers.traceparent).toBe(`00-${inner!.spanContext().traceId}-${inner!.spanContext().spanId}-01`);
    expect(inner!.name).toBe('inner');
    expect(inner!.parentSpanContext?.spanId).toBe(outer!.spanContext().spanId);
    expect(outer!.attributes).toEqual({ 'broker.test': 1 });
  });

  it('marks a span failed when its work throws', async () => {
    exporter.reset();
    await expect(inSpan('failing', {}, async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    const [span] = exporter.getFinishedSpans();
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.events.map((e) => e.name)).toEqual(['exception']);
  });
});
