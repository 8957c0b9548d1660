import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';

/**
 * The OpenTelemetry SDK with an OTLP/HTTP exporter, registered globally (context manager and W3C
 * propagator included). Loaded by main.ts only when OTEL_EXPORTER_OTLP_ENDPOINT is set; the
 * exporter reads that variable (and the other OTEL_EXPORTER_OTLP_* ones) itself.
 */
export function startTracing(o: { serviceName: string }): { shutdown(): Promise<void> } {
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': o.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return { shutdown: () => provider.shutdown() };
}
