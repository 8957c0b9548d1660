import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import { activeTraceId } from './infra/tracing.js';

/**
 * Structured JSON logs. Anything that could carry a secret or personal data is redacted by
 * path wherever it appears, as a backstop to not logging it in the first place.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'book-broker' },
    serializers: { err: safeError },
    // Every line logged inside a span names its trace, so support can jump from a log line to it.
    mixin: () => {
      const traceId = activeTraceId();
      return traceId ? { traceId } : {};
    },
    redact: {
      paths: [
        'authorization',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
        'paymentToken',
        '*.paymentToken',
        'shippingAddress',
        '*.shippingAddress',
        'callbackSecret',
        '*.callbackSecret',
        'token',
        '*.token',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * How errors appear in logs. Query errors from the database carry the statement's parameters —
 * payment tokens, addresses, seller secrets — in their message: keep the SQL state, the
 * driver's own message and the statement text, never the parameters.
 */
export function safeError(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return { message: String(e) };
  const out: Record<string, unknown> = { type: e.name };
  const query = (e as { query?: unknown }).query;
  if (typeof query === 'string' && 'params' in e) {
    out.query = query;
    out.message = 'database query failed';
  } else {
    out.message = e.message;
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (e.stack) out.stack = e.stack.split('\n').filter((l) => l.trimStart().startsWith('at ')).join('\n');
  if (e.cause !== undefined) out.cause = safeError(e.cause);
  return out;
}

export type { Logger };
