import { describe, expect, it } from 'vitest';
import { offerSnapshot as offer } from '../../test/support/fixtures.js';
import type { OfferSnapshot } from '../domain/types.js';
import { OfferExclusions } from './offers.js';

describe('OfferExclusions', () => {
  it('gives up on a seller after two refusals, but not after refused cached prices', () => {
    const byRefusals = new OfferExclusions();
    byRefusals.refuse(offer({ offerId: 'a' }));
    byRefusals.refuse(offer({ offerId: 'b' }));
    expect(byRefusals.excludes(offer({ offerId: 'c' }))).toBe(true);

    const byPrices = new OfferExclusions();
    byPrices.refusePrice(offer({ offerId: 'a' }));
    byPrices.refusePrice(offer({ offerId: 'b' }));
    // The refused offers at those totals stay out; the same offer at a new price, and the seller's others, do not.
    expect(byPrices.excludes(offer({ offerId: 'a' }))).toBe(true);
    expect(byPrices.refusedOffer(offer({ offerId: 'a' }))).toBe(true);
    expect(byPrices.excludes(offer({ offerId: 'a', totalCents: 1100 }))).toBe(false);
    expect(byPrices.excludes(offer({ offerId: 'c' }))).toBe(false);
  });

  it('rebuilds refusals from attempts, leaving out cached prices ordered on unquoted', () => {
    const failed = (o: OfferSnapshot) => ({ state: 'failed', paymentState: 'voided', sellerId: o.sellerId, offer: o });
    const x = OfferExclusions.fromAttempts([
      failed(offer({ offerId: 'a', priceCheckedAtOrder: true })),
      failed(offer({ offerId: 'b', priceCheckedAtOrder: true })),
      { state: 'failed', paymentState: 'declined', sellerId: 's1', offer: offer({ offerId: 'd' }) },
    ]);
    expect(x.excludes(offer({ offerId: 'a' }))).toBe(false);
    expect(x.excludes(offer({ offerId: 'c' }))).toBe(false);
    const y = OfferExclusions.fromAttempts([failed(offer({ offerId: 'a' }))]);
    expect(y.excludes(offer({ offerId: 'a' }))).toBe(true);
  });
});
