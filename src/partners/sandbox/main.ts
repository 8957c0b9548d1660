/**
 * `npm run sandbox`: the sandbox partner fleet as its own process (tests, the benchmark).
 *
 * Flags (or environment): --port (SANDBOX_PORT, default 4100; 0 = any free port), --seed
 * (SANDBOX_SEED), --latency-scale (SANDBOX_LATENCY_SCALE, default 1), --host (SANDBOX_HOST,
 * default 127.0.0.1), --exit-on-stdin-close (exit when the parent closes our stdin, so a crashed
 * test runner leaves no fleet behind).
 *
 * Prints one JSON line to stdout once listening — {"url": …, "sellers": [SellerInput…]} — and
 * nothing else to stdout afterwards; diagnostics go to stderr.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SEED, SandboxFleet } from './fleet.js';

function numberOption(flag: string, raw: string | undefined, fallback: number, valid: (n: number) => boolean): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!valid(n)) {
    process.stderr.write(`sandbox: invalid --${flag} ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      seed: { type: 'string' },
      'latency-scale': { type: 'string' },
      host: { type: 'string' },
      'exit-on-stdin-close': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const env = process.env;
  const port = numberOption('port', values.port ?? env.SANDBOX_PORT, 4100, (n) => Number.isInteger(n) && n >= 0 && n <= 65_535);
  const seed = numberOption('seed', values.seed ?? env.SANDBOX_SEED, DEFAULT_SEED, Number.isSafeInteger);
  const latencyScale = numberOption(
    'latency-scale',
    values['latency-scale'] ?? env.SANDBOX_LATENCY_SCALE,
    1,
    (n) => Number.isFinite(n) && n >= 0,
  );
  const host = values.host ?? env.SANDBOX_HOST ?? '127.0.0.1';

  const fleet = new SandboxFleet({ seed, latencyScale });
  const { url } = await fleet.start(port, host);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    fleet.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`sandbox: error while stopping on ${signal}: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  if (values['exit-on-stdin-close']) {
    process.stdin.on('end', () => shutdown('stdin close'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  process.stdout.write(`${JSON.stringify({ url, seed, latencyScale, sellers: fleet.sellerInputs() })}\n`);
  process.stderr.write(`sandbox: ${fleet.specs().length} sellers listening on ${url} (seed ${seed}, latency ×${latencyScale})\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`sandbox: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (e instanceof Error && e.cause !== undefined) process.stderr.write(`caused by: ${String(e.cause)}\n`);
  process.exit(1);
});
