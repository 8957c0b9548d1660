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
