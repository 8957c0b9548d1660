import { describe, expect, it } from 'vitest';
import { decide, renderWebhookBody, retryDelayMs } from './webhook-relay.js';

const DEFAULTS = { retryBaseMs: 5_000, retryMaxMs: 4 * 3_600_000 };

describe('webhook retries', () => {
  it('decides from the answer: 2xx delivered, 410 gone, anything else (and no answer) retried', () => {
    expect(decide({ kind: 'status', status: 200 })).toBe('delivered');
    expect(decide({ kind: 'status', status: 204 })).toBe('delivered');
    expect(decide({ kind: 'status', status: 410 })).toBe('gone');
    for (const status of [301, 307, 400, 404, 429, 500, 503]) expect(decide({ kind: 'status', status })).toBe('retry');
    expect(decide({ kind: 'error', code: 'ETIMEDOUT', message: 'timeout' })).toBe('retry');
  });

  it('backs off exponentially with jitter: the first retry within seconds, later ones hours apart, capped', () => {
    expect(retryDelayMs(1, DEFAULTS, () => 0)).toBe(2_500);
    expect(retryDelayMs(1, DEFAULTS, () => 1)).toBe(5_000);
    expect(retryDelayMs(2, DEFAULTS, () => 1)).toBe(10_000);
    expect(retryDelayMs(30, DEFAULTS, () => 1)).toBe(4 * 3_600_000);
    expect(retryDelayMs(1_000, DEFAULTS, () => 0.5)).toBe(3 * 3_600_000);
    // With the default 25-hour window, a receiver down all along is tried about 15 times.
    let elapsed = 0;
    let tries = 0;
    while (elapsed < 25 * 3_600_000) elapsed += retryDelayMs(++tries, DEFAULTS, () => 1);
    expect(tries).toBeGreaterThan(10);
    expect(tries).toBeLessThan(20);
  });
});

describe('webhook bodies', () => {
  const payload = {
    id: 'r-1',
    status: 'ORDERED',
    revision: 7,
    bestOffer: { sellerId: 's-1', offerId: 'o', condition: 'NEW', itemCents: 1000, shippingCents: 300, taxCents: 80, feesCents: 20, totalCents: 1400, currency: 'USD', inventory: 2, quotedAt: '2030-01-01T00:00:00.000Z' },
    order: { sellerId: 's-1', sellerOrderId: 'SO-9', totalCents: 1400, currency: 'USD', deliveryEta: null, placedAt: '2030-01-01T00:00:01.000Z' },
    failureReason: null,
    at: '2030-01-01T00:00:01.5+00:00',
  };

  it('are the request as the API shows it, money as {cents, currency}, the same bytes every time', () => {
    const body = renderWebhookBody(payload);
    expect(renderWebhookBody(JSON.parse(JSON.stringify(payload)))).toBe(body);
    expect(JSON.parse(body)).toEqual({
      type: 'purchase_request.ordered',
      timestamp: '2030-01-01T00:00:01.500Z',
      data: {
        id: 'r-1',
        status: 'ORDERED',
        revision: 7,
        bestOffer: {
          seller: { id: 's-1' },
          condition: 'NEW',
          itemPrice: { cents: 1000, currency: 'USD' },
          shipping: { cents: 300, currency: 'USD' },
          tax: { cents: 80, currency: 'USD' },
          fees: { cents: 20, currency: 'USD' },
          total: { cents: 1400, currency: 'USD' },
          inventory: 2,
          quotedAt: '2030-01-01T00:00:00.000Z',
        },
        order: { seller: { id: 's-1' }, sellerOrderId: 'SO-9', total: { cents: 1400, currency: 'USD' }, deliveryEta: null, placedAt: '2030-01-01T00:00:01.000Z' },
        failureReason: null,
      },
    });
  });
});
