import WebSocket from 'ws';
import { Collected } from './server.js';

/**
 * A bare graphql-transport-ws socket, for what the graphql-ws client hides: close codes, upgrade
 * refusals, the exact wire payloads, and messages the client would never send.
 */

export type WireError = { message: string; locations?: unknown; path?: unknown; extensions?: Record<string, unknown> };

export interface WireMessage {
  type: string;
  id?: string;
  payload?: any;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface RawSocket {
  ws: WebSocket;
  /** Every message received, in order; completes when the socket closes. */
  seen: Collected<WireMessage>;
  closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): Promise<void>;
  sendText(text: string): Promise<void>;
  /** connection_init with the given params, then waits for connection_ack. */
  init(params?: Record<string, unknown>): Promise<void>;
  /** Sends a subscribe and waits for its first message (next, error or complete). */
  subscribe(id: string, query: string, variables?: Record<string, unknown>): Promise<WireMessage>;
}

const rawSockets: WebSocket[] = [];

/** Terminates every socket `rawSocket` and `tryUpgrade` opened: a suite calls it after each test. */
export function terminateRawSockets(): void {
  for (const ws of rawSockets.splice(0)) ws.terminate();
}

export function rawSocket(url: string, origin?: string): RawSocket {
  const ws = new WebSocket(url, 'graphql-transport-ws', origin ? { origin } : {});
  rawSockets.push(ws);
  const seen = new Collected<WireMessage>();
  // The close event says how it ended; an 'error' without a listener would crash the run.
  ws.on('error', () => {});
  ws.on('message', (data) => seen.push(JSON.parse(String(data)) as WireMessage));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      seen.complete();
      resolve({ code, reason: reason.toString() });
    });
  });
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error('socket closed before it opened')));
  });
  opened.catch(() => {});
  const sendText = async (text: string) => {
    await opened;
    await new Promise<void>((resolve, reject) => ws.send(text, (err) => (err ? reject(err) : resolve())));
  };
  const send = (message: unknown) => sendText(JSON.stringify(message));
  return {
    ws,
    seen,
    closed,
    sendText,
    send,
    async init(params = {}) {
      await send({ type: 'connection_init', payload: params });
      await seen.until((c) => c.values.some((m) => m.type === 'connection_ack') || c.completed);
      if (!seen.values.some((m) => m.type === 'connection_ack')) throw new Error(`no connection_ack; saw ${JSON.stringify(seen.values)}`);
    },
    async subscribe(id, query, variables = {}) {
      await send({ id, type: 'subscribe', payload: { query, variables } });
      await seen.until((c) => c.completed || c.values.some((m) => m.id === id));
      const first = seen.values.find((m) => m.id === id);
      if (!first) throw new Error(`socket closed before answering ${id}: ${JSON.stringify(await closed)}`);
      return first;
    },
  };
}

/** Attempts a WebSocket upgrade; reports whether it opened or the HTTP status it was refused with. */
export function tryUpgrade(url: string, origin?: string): Promise<{ opened: true } | { opened: false; status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'graphql-transport-ws', origin ? { origin } : {});
    rawSockets.push(ws);
    ws.on('error', () => {});
    ws.once('open', () => resolve({ opened: true }));
    ws.once('unexpected-response', (req, res) => {
      resolve({ opened: false, status: res.statusCode ?? 0 });
      res.resume();
      req.destroy();
    });
    ws.once('close', () => reject(new Error('closed without an open or an HTTP answer')));
  });
}

export const messagesFor = (sock: RawSocket, id: string) => sock.seen.values.filter((m) => m.id === id);
