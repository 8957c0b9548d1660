import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How a bench child server lives: listens on a loopback port, prints `{"url": …}` once listening,
 * and stops (running `beforeClose` first) on SIGTERM, SIGINT or when the bench closes its stdin.
 */
export async function serveUntilStopped(http: Server, beforeClose: () => void = () => {}): Promise<void> {
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const { port } = http.address() as AddressInfo;
  const stop = () => {
    beforeClose();
    http.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
}
