import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../db/client.js';
import { sandboxPaymentCalls } from '../db/schema.js';
import { systemClock } from '../domain/clock.js';
import { PaymentConflictError } from './gateway.js';
import { SandboxPaymentGateway } from './sandbox-gateway.js';

let database: Database;
let gateway: SandboxPaymentGateway;

beforeAll(async () => {
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
  gateway = new SandboxPaymentGateway(database.db, systemClock);
});
afterAll(async () => {
  await database?.close();
});

const calls = (key: string) => database.db.select().from(sandboxPaymentCalls).where(eq(sandboxPaymentCalls.key, key));

describe('SandboxPaymentGateway conflicts', () => {
  it('answers a repeated authorisation with the same key and amount as the first', async () => {
    const first = await gateway.authorize({ key: 'k-same', amountCents: 1500, currency: 'USD', token: 'tok_visa' });
    const again = await gateway.authorize({ key: 'k-same', amountCents: 1500, currency: 'USD', token: 'tok_visa' });
    expect(again).toEqual(first);
    expect((await calls('k-same')).map((c) => [c.result, c.effective])).toEqual([
      ['authorized', true],
      ['authorized', false],
    ]);
  });

  it('refuses the same key for another amount or currency with a definitive conflict, and changes nothing', async () => {
    await gateway.authorize({ key: 'k-conflict', amountCents: 1500, currency: 'USD', token: 'tok_visa' });
    await expect(gateway.authorize({ key: 'k-conflict', amountCents: 1600, currency: 'USD', token: 'tok_visa' })).rejects.toBeInstanceOf(PaymentConflictError);
    await expect(gateway.authorize({ key: 'k-conflict', amountCents: 1500, currency: 'EUR', token: 'tok_visa' })).rejects.toBeInstanceOf(PaymentConflictError);
    expect(await gateway.lookup('k-conflict')).toMatchObject({ amountCents: 1500, currency: 'USD', state: 'authorized' });
    expect((await calls('k-conflict')).map((c) => c.result)).toEqual(['authorized', 'conflict', 'conflict']);
  });

  it('refuses to capture a voided payment or void a captured one, definitively', async () => {
    await gateway.authorize({ key: 'k-voided', amountCents: 900, currency: 'USD', token: 'tok_visa' });
    await gateway.void({ key: 'k-voided' });
    await expect(gateway.capture({ key: 'k-voided', amountCents: 900 })).rejects.toBeInstanceOf(PaymentConflictError);

    await gateway.authorize({ key: 'k-captured', amountCents: 900, currency: 'USD', token: 'tok_visa' });
    await gateway.capture({ key: 'k-captured', amountCents: 900 });
    await expect(gateway.void({ key: 'k-captured' })).rejects.toBeInstanceOf(PaymentConflictError);
  });
});

describe('SandboxPaymentGateway calls made together', () => {
  it('gives each of many calls in one turn its own answer, a repeated key included', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k-batch-${i}`);
    const results = await Promise.allSettled([
      ...keys.map((key, i) => gateway.authorize({ key, amountCents: 1000 + i, currency: 'USD', token: i === 3 ? 'tok_declined' : 'tok_visa' })),
      // The same key again in the same turn: answered after the first, as a repeat.
      gateway.authorize({ key: 'k-batch-0', amountCents: 1000, currency: 'USD', token: 'tok_visa' }),
      // And for another amount: a conflict for this caller only.
      gateway.authorize({ key: 'k-batch-1', amountCents: 5, currency: 'USD', token: 'tok_visa' }),
    ]);
    expect(results.slice(0, 12).map((r) => (r.status === 'fulfilled' ? r.value.status : 'error'))).toEqual(
      keys.map((_, i) => (i === 3 ? 'declined' : 'authorized')),
    );
    expect(results[12]).toEqual(results[0]);
    expect(results[13]).toMatchObject({ status: 'rejected', reason: expect.any(PaymentConflictError) });
    expect((await calls('k-batch-0')).map((c) => [c.result, c.effective])).toEqual([
      ['authorized', true],
      ['authorized', false],
    ]);

    // Captures of one turn: the authorised ones are captured; over the amount or declined is a conflict.
    const captures = await Promise.allSettled(
      keys.map((key, i) => gateway.capture({ key, amountCents: i === 5 ? 99_999 : 1000 + i })),
    );
    expect(captures.map((r) => r.status)).toEqual(keys.map((_, i) => (i === 3 || i === 5 ? 'rejected' : 'fulfilled')));
    expect(await gateway.lookup('k-batch-5')).toMatchObject({ state: 'authorized' });
    expect(await gateway.lookup('k-batch-7')).toMatchObject({ state: 'captured' });
    // Capturing again is a repeat, not an error; voiding one of them now is a conflict.
    const again = await Promise.allSettled([gateway.capture({ key: 'k-batch-7', amountCents: 1007 }), gateway.void({ key: 'k-batch-8' }), gateway.void({ key: 'k-batch-5' })]);
    expect(again.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await gateway.lookup('k-batch-5')).toMatchObject({ state: 'voided' });
    expect((await calls('k-batch-7')).map((c) => [c.operation, c.result, c.effective])).toEqual([
      ['authorize', 'authorized', true],
      ['capture', 'captured', true],
      ['capture', 'captured', false],
    ]);
  });
});
