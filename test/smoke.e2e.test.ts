import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCEL, CREATE, WATCH, createInput } from './support/fixtures.js';
import { type TestServer, collect, startTestServer } from './support/server.js';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.close();
});

describe('a request from creation to cancel, watched live', () => {
  it('is created PENDING, streamed, and the stream completes after cancel', async () => {
    const created = await s.gql(CREATE, { input: createInput() });
    expect(created.errors).toBeUndefined();
    const req = created.data.createPurchaseRequest.purchaseRequest;
    expect(req).toMatchObject({ status: 'PENDING', revision: 1 });

    const { seen } = collect(s.wsClient(), WATCH, { id: req.id });
    await seen.until((c) => c.values.length === 1);
    expect(seen.values[0]!.data!.purchaseRequestUpdated).toMatchObject({ id: req.id, status: 'PENDING', revision: 1 });

    const canceled = await s.gql(CANCEL, { id: req.id });
    expect(canceled.data.cancelPurchaseRequest.purchaseRequest).toMatchObject({ status: 'CANCELED', revision: 2 });

    await seen.until((c) => c.completed);
    expect(seen.values.map((v) => v.data!.purchaseRequestUpdated.status)).toEqual(['PENDING', 'CANCELED']);
  });
});
