import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a partner proxy got from the seller behind it. */
export interface UpstreamAnswer {
  status: number;
  contentType: string | null;
  text: string;
}

export interface PartnerProxyHooks {
  /** Before the call reaches the seller (its body already read): true when it has answered `res` itself. */
  intercept?(req: IncomingMessage, res: ServerResponse): boolean;
  /** With the seller's answer: true when it has answered `res` itself instead of passing it on. */
  answer?(req: IncomingMessage, res: ServerResponse, up: UpstreamAnswer): boolean;
}

export interface PartnerProxy {
  url: string;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/**
 * A partner-side HTTP proxy in front of sandbox sellers: passes every call through to `upstream`
 * unchanged (502 when that fails), except where a hook answers it itself.
 */
export async function startPartnerProxy(upstream: string, hooks: PartnerProxyHooks = {}): Promise<PartnerProxy> {
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (hooks.intercept?.(req, res)) return;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !HOP_BY_HOP.has(k)) headers[k] = v;
      const up = await fetch(`${upstream}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      const text = await up.text();
      if (hooks.answer?.(req, res, { status: up.status, contentType: up.headers.get('content-type'), text })) return;
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
      res.end(text);
    })().catch(() => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
