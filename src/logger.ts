import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs. Anything that could carry a secret or personal data is redacted by
 * path wherever it appears, as a backstop to not logging it in the first place.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'book-broker' },
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
  });
}

export type { Logger };
