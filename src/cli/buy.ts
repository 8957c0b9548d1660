import { run } from './run.js';

/**
 * `npm run buy -- --isbn 9780141439518 --max 45.00`: buys a book through the broker and streams
 * its lifecycle to the terminal as it happens. `--help` for the options and exit codes.
 */
async function main(): Promise<void> {
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  // Piped into a reader that stopped (`| head`): nobody is left to tell; end as SIGPIPE would.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(128 + 13);
    throw e;
  });
  const code = await run({
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    stdout: process.stdout,
    stderr: process.stderr,
    interrupt: interrupt.signal,
  });
  // Exit once what was written has been flushed: sockets and keep-alive pools may still be open.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
