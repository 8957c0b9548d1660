import type { RequestStatus } from '../domain/types.js';

/**
 * The CLI's exit codes: one per outcome a script may branch on. 1x: the broker is still
 * watching for the user; 2x: the request ended without an order.
 */
export const EXIT = {
  /** --help, and nothing else that is not an order. */
  OK: 0,
  ORDERED: 0,
  ERROR: 1,
  USAGE: 2,
  UNAUTHENTICATED: 3,
  UNREACHABLE: 4,
  QUOTED: 10,
  OUT_OF_STOCK: 11,
  EXPIRED: 20,
  CANCELED: 21,
  FAILED: 22,
  /** 128 + SIGINT, as shells report it. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Whether watching ends at this status, and with which code: at every terminal status, and at
 * the watching ones (QUOTED, OUT_OF_STOCK) unless the user asked to wait for a terminal one.
 */
export function stopAt(status: RequestStatus, wait: boolean): ExitCode | null {
  switch (status) {
    case 'PENDING':
    case 'SEARCHING':
    case 'ORDERING':
      return null;
    case 'QUOTED':
      return wait ? null : EXIT.QUOTED;
    case 'OUT_OF_STOCK':
      return wait ? null : EXIT.OUT_OF_STOCK;
    case 'ORDERED':
      return EXIT.ORDERED;
    case 'EXPIRED':
      return EXIT.EXPIRED;
    case 'CANCELED':
      return EXIT.CANCELED;
    case 'FAILED':
      return EXIT.FAILED;
    default: {
      // A status newer than this client (enums may grow): keep watching; terminal ones complete.
      const newer: never = status;
      void newer;
      return null;
    }
  }
}

/** A failure that ends the CLI with a message and a code (rejected input, auth, network…). */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    /** Stable, for --json: UNAUTHENTICATED, UNREACHABLE, USER_ERRORS, or the API's own code. */
    readonly code: string,
    message: string,
    readonly details: { userErrors?: Array<{ field: string[] | null; message: string; code: string }>; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}
