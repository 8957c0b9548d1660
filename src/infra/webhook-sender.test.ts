import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { guardedConnect } from './ssrf.js';
import { signWebhook, WebhookSender } from './webhook-sender.js';

// The Standard Webhooks specification's published test vector (also in its reference libraries' tests).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

/** HMAC-SHA256 over "<id>.<timestamp>.<body>" with the base64-decoded secret: the spec, by hand. */
function sign(secret: string, id: string, ts: string | number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
}

describe('webhook signatures', () => {
  it('match the specification test vector', () => {
    expect(sign(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
    expect(new Webhook(VECTOR.secret).sign(VECTOR.id, new Date(VECTOR.timestamp * 1000), VECTOR.body)).toBe(VECTOR.signature);
    expect(signWebhook(VECTOR.secret, VECTOR.id, new Date(VECTOR.timestamp * 1000), VECTOR.body)).toBe(VECTOR.signature);
  });

  it('are what the reference verifier accepts, and only for the body signed', () => {
    const secret = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
    const at = new Date();
    const body = '{"type":"purchase_request.ordered","data":{"id":"r-1"}}';
    const headers = { 'webhook-id': 'msg_ref', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signWebhook(secret, 'msg_ref', at, body) };
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace('r-1', 'r-2'), headers)).toThrow();
  });
});

describe('WebhookSender', () => {
  let server: Server;
  let url: string;
  const seen: { headers: IncomingHttpHeaders; body: string }[] = [];
  let answer = 200;
  const hung: ServerResponse[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      // A receiver that takes the request and never answers.
      if (req.url === '/hang') {
        hung.push(res);
        return;
      }
      // One that answers at once and then dribbles its body out, never finishing it.
      if (req.url === '/dribble') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('ok');
        hung.push(res);
        return;
      }
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(answer, answer >= 300 && answer < 400 ? { location: 'http://127.0.0.1:1/' } : {}).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => {
    for (const res of hung) res.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });

  it('posts the body signed per the specification, under `any`', async () => {
    const sender = new WebhookSender({ urls: 'any' });
    const at = new Date('2026-01-02T03:04:05.678Z');
    const secret = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;
    const result = await sender.send({ url, secret, webhookId: 'msg_1', body: '{"a":1}', at });
    await sender.close();
    expect(result).toEqual({ kind: 'status', status: 200 });
    const got = seen.at(-1)!;
    expect(got.body).toBe('{"a":1}');
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['webhook-id']).toBe('msg_1');
    expect(got.headers['webhook-timestamp']).toBe(String(Math.floor(at.getTime() / 1000)));
    expect(got.headers['webhook-signature']).toBe(sign(secret, 'msg_1', got.headers['webhook-timestamp'] as string, '{"a":1}'));
  });

  it('gives up on a receiver that does not answer in time, and when the caller cuts the try short; never waits out a slow body', async () => {
    const sender = new WebhookSender({ urls: 'any', timeoutMs: 100 });
    const hang = url.replace('/hook', '/hang');
    const late = await sender.send({ url: hang, secret: VECTOR.secret, webhookId: 'msg_t', body: '{}', at: new Date() });
    expect(late).toMatchObject({ kind: 'error', code: 'ETIMEDOUT' });
    const cut = new AbortController();
    const slow = new WebhookSender({ urls: 'any', timeoutMs: 10_000 });
    const pending = slow.send({ url: hang, secret: VECTOR.secret, webhookId: 'msg_c', body: '{}', at: new Date() }, cut.signal);
    cut.abort(new Error('shutting down'));
    expect(await pending).toMatchObject({ kind: 'error', message: 'shutting down' });
    // The status came in time: it counts, and the body is not waited for past the timeout.
    expect(await sender.send({ url: url.replace('/hook', '/dribble'), secret: VECTOR.secret, webhookId: 'msg_d', body: '{}', at: new Date() })).toEqual({ kind: 'status', status: 200 });
    await Promise.all([sender.close(), slow.close()]);
  });

  it('does not follow redirects', async () => {
    answer = 307;
    const sender = new WebhookSender({ urls: 'any' });
    const result = await sender.send({ url, secret: VECTOR.secret, webhookId: 'msg_2', body: '{}', at: new Date() });
    await sender.close();
    answer = 200;
    expect(result).toEqual({ kind: 'status', status: 307 });
  });

  it('under `public`, refuses a host that resolves to a loopback address, at connection time', async () => {
    const port = (server.address() as AddressInfo).port;
    const before = seen.length;
    // A name that answered a public address when the endpoint was saved and 127.0.0.1 now (rebinding).
    const rebinding = (_host: string, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => cb(null, [{ address: '127.0.0.1', family: 4 }]);
    const sender = new WebhookSender({ urls: 'public', connect: guardedConnect(rebinding) });
    const viaName = await sender.send({ url: `https://hooks.example.com:${port}/hook`, secret: VECTOR.secret, webhookId: 'msg_3', body: '{}', at: new Date() });
    await sender.close();
    expect(viaName).toMatchObject({ kind: 'error', code: 'EADDRBLOCKED' });
    // And through the system resolver: localhost is 127.0.0.1 (or ::1).
    const real = new WebhookSender({ urls: 'public' });
    const viaLocalhost = await real.send({ url: `https://localhost:${port}/hook`, secret: VECTOR.secret, webhookId: 'msg_4', body: '{}', at: new Date() });
    const viaLiteral = await real.send({ url: `https://[::ffff:127.0.0.1]:${port}/hook`, secret: VECTOR.secret, webhookId: 'msg_5', body: '{}', at: new Date() });
    const viaHttp = await real.send({ url, secret: VECTOR.secret, webhookId: 'msg_6', body: '{}', at: new Date() });
    await real.close();
    expect(viaLocalhost).toMatchObject({ kind: 'error', code: 'EADDRBLOCKED' });
    expect(viaLiteral).toMatchObject({ kind: 'error', code: 'EADDRBLOCKED' });
    expect(viaHttp).toMatchObject({ kind: 'error', code: 'EADDRBLOCKED' });
    expect(seen.length).toBe(before);
  });

  it('keeps at most `connectionsPerOrigin` sockets to one receiving host; more sends wait for one', async () => {
    let sockets = 0;
    const held: ServerResponse[] = [];
    const host = createServer((req, res) => {
      req.resume();
      req.on('end', () => held.push(res));
    });
    host.on('connection', () => (sockets += 1));
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const to = `http://127.0.0.1:${(host.address() as AddressInfo).port}/hook`;
    const sender = new WebhookSender({ urls: 'any', connectionsPerOrigin: 2 });
    try {
      const sends = [1, 2, 3].map((n) => sender.send({ url: to, secret: VECTOR.secret, webhookId: `msg_${n}`, body: '{}', at: new Date() }));
      await vi.waitFor(() => expect(held).toHaveLength(2));
      // One answered: the third goes out on its socket.
      held[0]!.writeHead(204).end();
      await vi.waitFor(() => expect(held).toHaveLength(3));
      expect(sockets).toBe(2);
      for (const res of held.slice(1)) res.writeHead(204).end();
      expect((await Promise.all(sends)).map((r) => r.kind === 'status' && r.status)).toEqual([204, 204, 204]);
    } finally {
      host.closeAllConnections();
      await new Promise<void>((r) => host.close(() => r()));
    }
  });
});
