import { createServer, type IncomingHttpHeaders, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BrokerProcess, startBrokerProcess } from './support/broker-process.js';
import { createInput } from './support/fixtures.js';
import { eventually, freshDatabase } from './support/server.js';

/**
 * The webhook outbox across a crash: the broker is killed outright (SIGKILL) while a delivery is
 * in flight — the receiver has it and has not answered. A broker started again on the same
 * storage delivers it (same webhook-id, same body) once its lease lapses, and everything after it,
 * in revision order: nothing is lost.
 */

const ENV = {
  ENGINE: 'true',
  ENGINE_POLL_MS: '50',
  ENGINE_LEASE_MS: '1000',
  WEBHOOK_URLS: 'any',
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_RETRY_BASE_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  // The lease is three answer timeouts: 3 s.
  WEBHOOK_TIMEOUT_MS: '1000',
};

const CREATE_ENDPOINT = `mutation($input: WebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } secret userErrors { code } } }`;
const CREATE = `mutation($input: CreatePurchaseRequestInput!) { createPurchaseRequest(input: $input) { purchaseRequest { id } userErrors { code } } }`;
const CANCEL = `mutation($id: ID!) { cancelPurchaseRequest(id: $id) { purchaseRequest { status } userErrors { code } } }`;

interface Receipt {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number | null;
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let broker: BrokerProcess | null = null;
let receiver: Server;
let receiverUrl = '';
const receipts: Receipt[] = [];
const held: ServerResponse[] = [];
let hold = true;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const receipt: Receipt = { headers: req.headers, body, answered: null };
      receipts.push(receipt);
      if (hold) {
        held.push(res); // never answered: the broker dies with this try in flight
        return;
      }
      receipt.answered = 200;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  db = await freshDatabase();
});

afterAll(async () => {
  await broker?.stop();
  receiver?.closeAllConnections();
  await new Promise<void>((r) => receiver.close(() => r()));
  await db?.drop();
});

it('a delivery in flight when the broker is killed is delivered after restart, with the same id, and nothing after it is lost', async () => {
  broker = await startBrokerProcess({ ...ENV, ...db.env });
  const endpoint = (await broker.gql(CREATE_ENDPOINT, { input: { url: receiverUrl } })).data.createWebhookEndpoint;
  expect(endpoint.userErrors).toEqual([]);

  // With no sellers the engine finds nothing: OUT_OF_STOCK (told), then canceled (told).
  const id = (await broker.gql(CREATE, { input: createInput() })).data.createPurchaseRequest.purchaseRequest.id as string;
  await eventually(() => Promise.resolve(receipts.length >= 1), 15_000);
  const inFlight = receipts[0]!;
  expect(JSON.parse(inFlight.body).data).toMatchObject({ id, status: 'OUT_OF_STOCK' });
  expect((await broker.gql(CANCEL, { id })).data.cancelPurchaseRequest.userErrors).toEqual([]);

  await broker.kill();
  broker = null;
  for (const res of held) res.destroy();
  hold = false;
  const triesBefore = receipts.length;
  // Revision order: the canceled event waited behind the one in flight, so it was never sent.
  expect(receipts.every((r) => JSON.parse(r.body).data.status === 'OUT_OF_STOCK')).toBe(true);

  broker = await startBrokerProcess({ ...ENV, ...db.env });
  await eventually(() => Promise.resolve(receipts.some((r) => r.answered === 200 && JSON.parse(r.body).data.status === 'CANCELED')), 20_000);
  expect(receipts.length).toBeGreaterThan(triesBefore);

  const taken = receipts.filter((r) => r.answered === 200);
  const outOfStock = taken.filter((r) => r.headers['webhook-id'] === inFlight.headers['webhook-id']);
  expect(outOfStock.length).toBeGreaterThanOrEqual(1);
  expect(outOfStock[0]!.body).toBe(inFlight.body);
  // Deduplicated by webhook-id, the receiver saw each outcome once, in revision order.
  const seen = new Map<string, any>();
  for (const r of taken) if (!seen.has(String(r.headers['webhook-id']))) seen.set(String(r.headers['webhook-id']), JSON.parse(r.body).data);
  expect([...seen.values()].map((d) => d.status)).toEqual(['OUT_OF_STOCK', 'CANCELED']);
  const revisions = [...seen.values()].map((d) => d.revision);
  expect(revisions[0]).toBeLessThan(revisions[1]);
}, 90_000);
